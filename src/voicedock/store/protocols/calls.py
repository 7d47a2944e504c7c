"""Calls, the messages of their conversation and their events, and ``GET /calls``'s pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from voicedock.domain.records import Call, CallerMemory, CallEvent, CallMessage, CallStatus


@dataclass(frozen=True, slots=True)
class CallCursor:
    """Where a page of ``GET /calls`` ended: the last call's ``created_at`` and ``seq``, both
    immutable, so the next page starts right after it in the list's own order (newest first)
    however calls are inserted or updated meanwhile."""

    created_at: datetime
    seq: int


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A list's bounds on ``created_at`` (None: unbounded); whether a bound itself is in the
    range is the list's own (``GET /calls``: yes, ``GET /audit-events``: no)."""

    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class CallQuery:
    """Filters of ``GET /calls``; ``after`` is the decoded opaque cursor."""

    organization_id: str
    limit: int = 100
    offset: int = 0
    status: CallStatus | None = None
    created: TimeRange = field(default_factory=TimeRange)  # bounds included
    campaign_id: str | None = None  # only the calls this campaign placed
    after: CallCursor | None = None  # newest first: only calls listed after this one
    include_tests: bool = False  # the test runs' calls too (``test_run_id``)


@dataclass(frozen=True, slots=True)
class CallPage:
    calls: list[Call]
    total: int


class CallWrites(Protocol):
    async def insert_call(self, call: Call) -> Call:
        """Insert and return the call with its store-assigned ``seq``."""
        ...

    async def get_call_for_update(self, call_id: str) -> Call | None: ...
    async def update_call(self, call: Call) -> None: ...
    async def add_message(self, message: CallMessage) -> CallMessage: ...
    async def add_event(self, event: CallEvent) -> CallEvent: ...

    # What calls left of their other party (an assistant's ``memory``), by the party's number.
    async def insert_caller_memory(self, memory: CallerMemory) -> None: ...
    async def delete_caller_memories(
        self, organization_id: str, party: str, memory_id: str | None = None
    ) -> int:
        """The party's memories (``memory_id``: that one alone); how many there were."""
        ...

    async def update_caller_memory(self, memory: CallerMemory) -> None:
        """Write the memory's ``summary`` and ``facts`` (an edit through the API)."""
        ...


class CallReads(Protocol):
    async def list_caller_memories(
        self, organization_id: str, party: str, limit: int
    ) -> list[CallerMemory]: ...  # newest first
    async def get_caller_memory(
        self, organization_id: str, party: str, memory_id: str
    ) -> CallerMemory | None: ...
    async def get_call(self, organization_id: str | None, call_id: str) -> Call | None:
        """``organization_id=None`` is for the engine (PBX events carry no tenant)."""
        ...

    async def list_calls(self, query: CallQuery) -> CallPage: ...
    async def list_active_calls(self, owner_node: str | None = None) -> list[Call]:
        """Every non-terminal call (of the node ``owner_node`` when given)."""
        ...

    async def list_messages(self, call_id: str) -> list[CallMessage]: ...
    async def list_events(self, call_id: str, after_seq: int = 0) -> list[CallEvent]: ...


__all__ = ["CallCursor", "CallPage", "CallQuery", "CallReads", "CallWrites", "TimeRange"]
