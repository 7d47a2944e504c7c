"""Calls, their messages and events in SQL (both backends); ``GET /calls`` pages by keyset on
the list's own order (``created_at``, ``seq``)."""

# Statements are assembled only from constant table/column names; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

import dataclasses

from voicedock.domain.records import Call, CallerMemory, CallEvent, CallMessage
from voicedock.store.base import CallPage, CallQuery
from voicedock.store.sql.base import StorePart, TransactionPart
from voicedock.store.sql.conn import SqlValue
from voicedock.store.sql.rows import (
    ACTIVE_IN,
    CALL_EVENTS,
    CALL_MESSAGES,
    CALL_MUTABLE_COLUMNS,
    CALLER_MEMORIES,
    CALLS,
    integer,
)


class SqlCallWrites(TransactionPart):
    """Calls, messages and events inside an open transaction."""

    async def insert_call(self, call: Call) -> Call:
        row = await self._conn.fetchrow(
            CALLS.insert_sql(returning="seq"),
            *CALLS.encode(call, self._dialect, CALLS.insert_columns),
        )
        assert row is not None  # RETURNING always yields the inserted row
        return dataclasses.replace(call, seq=integer(row["seq"]))

    async def get_call_for_update(self, call_id: str) -> Call | None:
        return await self._by_key(CALLS, "id", call_id, locked=True)

    async def update_call(self, call: Call) -> None:
        """Write every mutable field; ``updated_at`` is set to now (also on ``call``)."""
        await self._touched(CALLS, call, CALL_MUTABLE_COLUMNS, "call")

    async def add_message(self, message: CallMessage) -> CallMessage:
        row = await self._conn.fetchrow(
            CALL_MESSAGES.insert_sql(returning="seq"),
            *CALL_MESSAGES.encode(message, self._dialect, CALL_MESSAGES.insert_columns),
        )
        assert row is not None
        return dataclasses.replace(message, seq=integer(row["seq"]))

    async def add_event(self, event: CallEvent) -> CallEvent:
        row = await self._conn.fetchrow(
            CALL_EVENTS.insert_sql(returning="seq"),
            *CALL_EVENTS.encode(event, self._dialect, CALL_EVENTS.insert_columns),
        )
        assert row is not None
        return dataclasses.replace(event, seq=integer(row["seq"]))

    async def insert_caller_memory(self, memory: CallerMemory) -> None:
        await self._insert(CALLER_MEMORIES, memory)

    async def delete_caller_memories(
        self, organization_id: str, party: str, memory_id: str | None = None
    ) -> int:
        if memory_id is None:
            return await self._conn.execute(
                "DELETE FROM caller_memories WHERE organization_id = ? AND party = ?",
                organization_id,
                party,
            )
        return await self._conn.execute(
            "DELETE FROM caller_memories WHERE organization_id = ? AND party = ? AND id = ?",
            organization_id,
            party,
            memory_id,
        )

    async def update_caller_memory(self, memory: CallerMemory) -> None:
        await self._update(CALLER_MEMORIES, memory, ("summary", "facts"), "caller memory")


class SqlCallReads(StorePart):
    """Call, message and event lookups."""

    async def get_caller_memory(
        self, organization_id: str, party: str, memory_id: str
    ) -> CallerMemory | None:
        memory = await self._by_id(CALLER_MEMORIES, organization_id, memory_id)
        return memory if memory is not None and memory.party == party else None

    async def list_caller_memories(
        self, organization_id: str, party: str, limit: int
    ) -> list[CallerMemory]:
        rows = await self._reader.fetch(
            "SELECT * FROM caller_memories WHERE organization_id = ? AND party = ?"
            " ORDER BY created_at DESC, id LIMIT ?",
            organization_id,
            party,
            limit,
        )
        return [CALLER_MEMORIES.decode(r, self._dialect) for r in rows]

    async def get_call(self, organization_id: str | None, call_id: str) -> Call | None:
        return await self._by_id(CALLS, organization_id, call_id)

    async def list_calls(self, query: CallQuery) -> CallPage:
        where = ["organization_id = ?"]
        args: list[SqlValue] = [query.organization_id]
        if query.status is not None:
            where.append("status = ?")
            args.append(str(query.status))
        self._created_within(where, args, query.created, inclusive=True)
        if query.campaign_id is not None:
            where.append("campaign_id = ?")
            args.append(query.campaign_id)
        if not query.include_tests:
            where.append("test_run_id IS NULL")
        page = (query.after, query.limit, query.offset)
        calls, total = await self._newest_first(CALLS, where, args, page)
        return CallPage(calls=calls, total=total)

    async def list_active_calls(self, owner_node: str | None = None) -> list[Call]:
        sql = f"SELECT * FROM calls WHERE status IN {ACTIVE_IN}"
        args: list[SqlValue] = []
        if owner_node is not None:
            sql += " AND owner_node = ?"
            args.append(owner_node)
        rows = await self._reader.fetch(sql + " ORDER BY seq", *args)
        return [CALLS.decode(r, self._dialect) for r in rows]

    async def list_messages(self, call_id: str) -> list[CallMessage]:
        rows = await self._reader.fetch(
            "SELECT * FROM call_messages WHERE call_id = ? ORDER BY seq", call_id
        )
        return [CALL_MESSAGES.decode(r, self._dialect) for r in rows]

    async def list_events(self, call_id: str, after_seq: int = 0) -> list[CallEvent]:
        rows = await self._reader.fetch(
            "SELECT * FROM call_events WHERE call_id = ? AND seq > ? ORDER BY seq",
            call_id,
            after_seq,
        )
        return [CALL_EVENTS.decode(r, self._dialect) for r in rows]


__all__ = ["SqlCallReads", "SqlCallWrites"]
