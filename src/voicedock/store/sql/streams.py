"""Open event streams of every node (``event_streams``, both backends); the caps are
``calls/event_streams.py``'s.

A row per open ``GET /calls/{id}/events`` stream names the node and the run of it that serves
the stream. Only streams of nodes whose lease has not expired count, so a node that died stops
counting with its lease; its rows go when its lease row goes (``FORGET_STREAMS_OF_GONE_NODES``,
run where nodes leave, start or are found dead). ``count_event_streams`` first takes the
organization's turn (``Locks.lock_event_streams``: a transaction-scoped advisory lock on
PostgreSQL; SQLite's single writer serializes anyway), so the count and the row the transaction
then inserts commit together: two nodes never both see room for the last stream.
"""

# Statements are assembled only from constant table/column names; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from voicedock.domain.records import EventStream, OpenStreams
from voicedock.store.sql.base import TransactionPart
from voicedock.store.sql.conn import marks
from voicedock.store.sql.rows import EVENT_STREAMS, integer

# The streams of node runs that hold no lease row any more (left, restarted, found dead).
FORGET_STREAMS_OF_GONE_NODES = (
    "DELETE FROM event_streams WHERE NOT EXISTS (SELECT 1 FROM nodes n"
    " WHERE n.id = event_streams.node_id AND n.run = event_streams.node_run)"
)


class SqlStreamWrites(TransactionPart):
    """Open event streams inside an open transaction."""

    async def count_event_streams(
        self, organization_id: str, api_key_id: str, now: datetime
    ) -> OpenStreams:
        await self._locks.lock_event_streams(self._conn, organization_id)
        row = await self._conn.fetchrow(
            "SELECT count(*) AS organization,"
            " COALESCE(sum(CASE WHEN s.api_key_id = ? THEN 1 ELSE 0 END), 0) AS api_key"
            " FROM event_streams s JOIN nodes n ON n.id = s.node_id AND n.run = s.node_run"
            " WHERE s.organization_id = ? AND n.lease_until > ?",
            api_key_id,
            organization_id,
            self._dialect.dt(now),
        )
        assert row is not None  # an aggregate always answers
        return OpenStreams(
            organization=integer(row["organization"]), api_key=integer(row["api_key"])
        )

    async def insert_event_stream(self, stream: EventStream) -> None:
        await self._conn.execute(
            EVENT_STREAMS.insert_sql(),
            *EVENT_STREAMS.encode(stream, self._dialect, EVENT_STREAMS.insert_columns),
        )

    async def delete_event_streams(self, stream_ids: Collection[str]) -> None:
        if not stream_ids:
            return
        await self._conn.execute(
            f"DELETE FROM event_streams WHERE id IN ({marks(stream_ids)})", *stream_ids
        )


__all__ = ["FORGET_STREAMS_OF_GONE_NODES", "SqlStreamWrites"]
