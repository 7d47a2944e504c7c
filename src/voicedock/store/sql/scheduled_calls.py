"""Scheduled calls in SQL (both backends): each due call is claimed by one node (``SKIP
LOCKED`` on PostgreSQL), and counted per organization."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from voicedock.domain.records import Call, CallStatus
from voicedock.store.base import ScheduledChoice, ScheduledWaiting
from voicedock.store.sql.base import StorePart, TransactionPart
from voicedock.store.sql.conn import SqlValue, marks
from voicedock.store.sql.rows import CALLS, integer


class SqlScheduledCallWrites(TransactionPart):
    """Scheduled calls claimed and counted inside an open transaction."""

    async def claim_scheduled_call(
        self, node_id: str, now: datetime, choice: ScheduledChoice
    ) -> Call | None:
        """The chosen scheduled call due first at ``now``, locked until the transaction ends
        and owned by ``node_id`` (on PostgreSQL, a call another node holds is skipped, not
        waited for: each is claimed by one node, once its status moves on)."""
        organization_id, skip = choice.organization_id, choice.skip
        locked = self._dialect.lock_suffix + (" SKIP LOCKED" if self._dialect.lock_suffix else "")
        sql = "SELECT * FROM calls WHERE status = ? AND scheduled_at <= ?"
        args: list[SqlValue] = [str(CallStatus.SCHEDULED), self._dialect.dt(now)]
        if organization_id is not None:
            sql += " AND organization_id = ?"
            args.append(organization_id)
        if skip:
            sql += f" AND id NOT IN ({marks(skip)})"
            args.extend(skip)
        row = await self._conn.fetchrow(sql + " ORDER BY scheduled_at, seq LIMIT 1" + locked, *args)
        if row is None:
            return None
        call = CALLS.decode(row, self._dialect)
        await self._conn.execute("UPDATE calls SET owner_node = ? WHERE id = ?", node_id, call.id)
        return dataclasses.replace(call, owner_node=node_id)

    async def scheduled_waiting(self, organization_id: str) -> ScheduledWaiting:
        row = await self._conn.fetchrow(
            "SELECT count(*) AS n, min(scheduled_at) AS first_due FROM calls"
            " WHERE organization_id = ? AND status = ?",
            organization_id,
            str(CallStatus.SCHEDULED),
        )
        if row is None:
            return ScheduledWaiting(0, None)
        return ScheduledWaiting(integer(row["n"]), self._dialect.from_dt(row["first_due"]))


class SqlScheduledCallReads(StorePart):
    """Which organizations have a scheduled call due."""

    async def scheduled_due_organizations(self, now: datetime) -> list[str]:
        rows = await self._reader.fetch(
            "SELECT organization_id, min(scheduled_at) AS first_due FROM calls"
            " WHERE status = ? AND scheduled_at <= ?"
            " GROUP BY organization_id ORDER BY first_due, organization_id",
            str(CallStatus.SCHEDULED),
            self._dialect.dt(now),
        )
        return [str(r["organization_id"]) for r in rows]


__all__ = ["SqlScheduledCallReads", "SqlScheduledCallWrites"]
