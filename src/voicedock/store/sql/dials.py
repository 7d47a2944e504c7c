"""The queries dial admission asks of a transaction (both backends); the decision is
``calls/outbound/dial_pacing.py``'s.

Nodes sharing the database take turns on a trunk: ``trunk_for_update`` locks its row (and
``lock_organization`` the organization's) until the transaction ends, so the counts taken after
it and the call the transaction then inserts commit together: two nodes never both see room
for the last call. SQLite's single writer serializes the same way. ``trunk_dials`` is the log of
recent dials per trunk that the calls-per-second limit counts.
"""

# Statements are assembled only from constant table/column names; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

from datetime import datetime
from typing import Literal

from voicedock.domain.records import Trunk
from voicedock.store.sql.base import TransactionPart
from voicedock.store.sql.rows import ACTIVE_IN, TRUNKS, integer

ActiveBy = Literal["trunk", "organization_id", "campaign_id"]


class SqlDialWrites(TransactionPart):
    """Dial admission's queries inside an open transaction."""

    async def trunk_for_update(self, trunk: str) -> Trunk | None:
        return await self._by_key(TRUNKS, "name", trunk, locked=True)

    async def lock_organization(self, organization_id: str) -> None:
        await self._conn.fetch(
            "SELECT id FROM organizations WHERE id = ?" + self._dialect.lock_suffix,
            organization_id,
        )

    async def count_active_calls(self, by: ActiveBy, value: str) -> int:
        """Calls at the PBX by trunk, organization or campaign; test suites' test calls are
        not counted against any limit."""
        row = await self._conn.fetchrow(
            f"SELECT count(*) AS n FROM calls WHERE {by} = ? AND status IN {ACTIVE_IN}"
            " AND test_run_id IS NULL",
            value,
        )
        return 0 if row is None else integer(row["n"])

    async def trunk_dials(
        self, trunk: str, admitted_after: datetime, done_after: datetime
    ) -> list[datetime | None]:
        rows = await self._conn.fetch(
            "SELECT done_at FROM trunk_dials WHERE trunk = ? AND at > ?"
            " AND (done_at IS NULL OR done_at > ?)",
            trunk,
            self._dialect.dt(admitted_after),
            self._dialect.dt(done_after),
        )
        return [self._dialect.from_dt(r["done_at"]) for r in rows]

    async def record_trunk_dial(self, trunk: str, now: datetime, forget_before: datetime) -> int:
        await self._conn.execute(
            "DELETE FROM trunk_dials WHERE trunk = ? AND at < ?",
            trunk,
            self._dialect.dt(forget_before),
        )
        inserted = await self._conn.fetchrow(
            "INSERT INTO trunk_dials (trunk, at) VALUES (?, ?) RETURNING seq",
            trunk,
            self._dialect.dt(now),
        )
        assert inserted is not None
        return integer(inserted["seq"])

    async def dial_done(self, dial_id: int, now: datetime) -> None:
        await self._conn.execute(
            "UPDATE trunk_dials SET done_at = ? WHERE seq = ?", self._dialect.dt(now), dial_id
        )
