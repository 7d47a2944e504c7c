"""Each final message of a live call to the engine as it is said, in order, off the audio path.

The dialogue hands each message over (``put``, synchronous and cheap); one task of the call
(``start``) awaits ``deliver`` with each in turn. A message that could not be delivered is
logged and the next one goes on: the call's record at the end holds the whole transcript.
``drain`` returns once every message handed over was delivered (before the call's result).

Held (``hold()``), the messages handed over wait in memory, delivered to nobody, until
``release()`` (then in order, and the later ones as they come) or ``withhold()`` (then none,
nor any later one): a caller asked about keeping the call's transcript has not answered yet
(``consent.py``).
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
        self._held: list[TranscriptEntry] | None = None  # held: what waits for the answer
        self._withheld = False

    def start(self) -> None:
        self._writer = self._tasks.spawn(self._write())

    def put(self, entry: TranscriptEntry) -> None:
        if self._withheld:
            return
        if self._held is not None:
            self._held.append(entry)
            return
        self._queue.put_nowait(entry)

    def hold(self) -> None:
        """Keep what is handed over from now on until ``release`` or ``withhold``."""
        if not self._withheld and self._held is None:
            self._held = []

    def release(self) -> None:
        """Deliver what was held, and from now on what is handed over."""
        held, self._held = self._held or [], None
        for entry in held:
            self._queue.put_nowait(entry)

    def withhold(self) -> None:
        """Drop what was held, and from now on everything handed over."""
        self._held, self._withheld = None, True

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
