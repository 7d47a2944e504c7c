"""Each final message of a live call to the engine as it is said, in order, off the audio path.

The dialogue hands each message over (``put``, synchronous and cheap); one task of the call
(``start``) awaits ``deliver`` with each in turn. A message that could not be delivered is
logged and the next one goes on: the call's record at the end holds the whole transcript.
``drain`` returns once every message handed over was delivered (before the call's result).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from voicedock.aio import Supervisor
from voicedock.pipeline.frames import TranscriptEntry

log = logging.getLogger("voicedock.calls")


class TranscriptDelivery:
    def __init__(
        self, deliver: Callable[[TranscriptEntry], Awaitable[None]], tasks: Supervisor
    ) -> None:
        self._deliver, self._tasks = deliver, tasks
        self._queue: asyncio.Queue[TranscriptEntry | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._writer = self._tasks.spawn(self._write())

    def put(self, entry: TranscriptEntry) -> None:
        self._queue.put_nowait(entry)

    async def drain(self) -> None:
        if self._writer is not None:
            self._queue.put_nowait(None)
            await asyncio.wait([self._writer])

    async def _write(self) -> None:
        while (entry := await self._queue.get()) is not None:
            try:
                await self._deliver(entry)
            except Exception:
                # The record at the end holds the whole transcript; one lost event is no reason
                # to end the call.
                log.exception("transcript turn not delivered")
