"""The PBX events of the benchmarks' calls, with when each first arrived (``perf_counter``)."""

from __future__ import annotations

import asyncio
import time

from voicedock.pbx.base import PbxEvent, PbxEventKind


class Events:
    def __init__(self) -> None:
        self.seen: dict[tuple[str, PbxEventKind], float] = {}
        self.changed = asyncio.Condition()

    async def __call__(self, event: PbxEvent) -> None:
        async with self.changed:
            self.seen.setdefault((event.call_id, event.kind), time.perf_counter())
            self.changed.notify_all()

    async def wait(self, call_id: str, kind: PbxEventKind, within: float = 30) -> float:
        async with asyncio.timeout(within), self.changed:
            while (call_id, kind) not in self.seen:
                await self.changed.wait()
            return self.seen[(call_id, kind)]
