"""The nodes' leases in SQL (both backends): a row per node and run, who owns which call, and a
dead node's calls claimed by exactly one other node. Joins, leaves and claims take turns
(``Locks.lock_nodes``: an advisory lock on PostgreSQL; SQLite's single writer serializes
anyway); the event streams a gone node held go with its row."""

# Statements are assembled only from constant table/column names; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

from datetime import datetime

from voicedock.domain.records import Call, NodeLease, utcnow
from voicedock.store.sql.base import StorePart, TransactionPart
from voicedock.store.sql.rows import ACTIVE_IN, CALLS, NODES
from voicedock.store.sql.streams import FORGET_STREAMS_OF_GONE_NODES


class SqlNodeWrites(TransactionPart):
    """The leases inside an open transaction."""

    async def clock(self) -> datetime:
        if self._dialect.clock_sql is None:
            return utcnow()
        row = await self._conn.fetchrow(self._dialect.clock_sql)
        assert row is not None
        return self._dialect.decode_datetime(row["now"])

    async def nodes_for_update(self) -> list[NodeLease]:
        await self._locks.lock_nodes(self._conn)
        rows = await self._conn.fetch("SELECT * FROM nodes ORDER BY id")
        return [NODES.decode(r, self._dialect) for r in rows]

    async def put_node(self, lease: NodeLease) -> None:
        await self._locks.lock_nodes(self._conn)
        await self._conn.execute("DELETE FROM nodes WHERE id = ?", lease.id)
        await self._insert(NODES, lease)
        await self._conn.execute(FORGET_STREAMS_OF_GONE_NODES)  # a previous run's

    async def renew_node(
        self, node_id: str, run: str, until: datetime, *, draining: bool = False
    ) -> bool | None:
        row = await self._conn.fetchrow(
            "UPDATE nodes SET lease_until = ?, draining = (draining OR ?)"
            " WHERE id = ? AND run = ? RETURNING draining",
            self._dialect.dt(until),
            draining,
            node_id,
            run,
        )
        return None if row is None else bool(row["draining"])

    async def drain_node(self, node_id: str) -> NodeLease | None:
        row = await self._conn.fetchrow(
            "UPDATE nodes SET draining = ? WHERE id = ? RETURNING *", True, node_id
        )
        return None if row is None else NODES.decode(row, self._dialect)

    async def delete_node(self, node_id: str, run: str | None = None) -> bool:
        await self._locks.lock_nodes(self._conn)
        sql, args = "DELETE FROM nodes WHERE id = ?", [node_id]
        if run is not None:
            sql += " AND run = ?"
            args.append(run)
        deleted = await self._conn.execute(sql, *args) > 0
        await self._conn.execute(FORGET_STREAMS_OF_GONE_NODES)
        return deleted

    async def take_unowned_calls(self, node_id: str) -> list[Call]:
        rows = await self._conn.fetch(
            "UPDATE calls SET owner_node = ?"
            f" WHERE owner_node IS NULL AND status IN {ACTIVE_IN} RETURNING *",
            node_id,
        )
        return sorted((CALLS.decode(r, self._dialect) for r in rows), key=lambda c: c.seq)

    async def claim_lost_calls(self, node_id: str, now: datetime) -> list[Call]:
        await self._locks.lock_nodes(self._conn)
        await self._conn.execute(
            "DELETE FROM nodes WHERE lease_until <= ? AND id <> ?", self._dialect.dt(now), node_id
        )
        await self._conn.execute(FORGET_STREAMS_OF_GONE_NODES)  # the dead nodes' streams
        rows = await self._conn.fetch(
            "UPDATE calls SET owner_node = ?"
            f" WHERE status IN {ACTIVE_IN} AND owner_node IS NOT NULL"
            " AND owner_node NOT IN (SELECT id FROM nodes) RETURNING *",
            node_id,
        )
        return sorted((CALLS.decode(r, self._dialect) for r in rows), key=lambda c: c.seq)


class SqlNodeReads(StorePart):
    """The lease rows."""

    async def list_nodes(self) -> list[NodeLease]:
        rows = await self._reader.fetch("SELECT * FROM nodes ORDER BY id")
        return [NODES.decode(r, self._dialect) for r in rows]


__all__ = ["SqlNodeReads", "SqlNodeWrites"]
