"""A ``PbxEventSink`` for tests: keeps every event and lets a test wait for one."""

from __future__ import annotations

import asyncio

from voicedock.pbx.base import PbxEvent, PbxEventKind


class PbxEventRecorder:
    """A ``PbxEventSink`` that keeps every event and lets a test wait for one."""

    def __init__(self) -> None:
        self.events: list[PbxEvent] = []
        self._changed = asyncio.Condition()

    async def __call__(self, event: PbxEvent) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def kinds(self, call_id: str) -> list[PbxEventKind]:
        return [e.kind for e in self.events if e.call_id == call_id]

    async def wait_for(self, call_id: str, kind: PbxEventKind, timeout: float = 5.0) -> PbxEvent:
        def found() -> PbxEvent | None:
            return next((e for e in self.events if e.call_id == call_id and e.kind == kind), None)

        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: found() is not None)
        event = found()
        assert event is not None
        return event
