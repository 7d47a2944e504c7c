"""How often the event loop ran a short timer while a test waited on something: that work went
on beside the loop (a thread, another process) instead of holding it up."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self


class LoopTicks:
    """``async with LoopTicks() as ticks: ...``; ``ticks.count``: the timers of ``every``
    seconds the loop ran so far."""

    def __init__(self, every: float = 0.01) -> None:
        self.every = every
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self.count += 1

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
