"""The two handles the FreeSWITCH Event Socket client (``esl/client.py``) gives out:
``EventSubscription`` (the events, for one consumer) and
``BackgroundJob`` (one ``bgapi`` command and its ``BACKGROUND_JOB`` result).
"""

from __future__ import annotations

import asyncio

from voicedock.aio import Closable
from voicedock.pbx.freeswitch.esl.errors import EslCommandError
from voicedock.pbx.freeswitch.esl.wire import EslEvent


class EventSubscription(Closable):
    """Async iterator over events; ``aclose()`` (or leaving ``async with``) unsubscribes.

    The queue is unbounded on purpose: dropping call events silently is worse than memory use,
    and the consumer (the call engine) handles each event in microseconds.
    """

    def __init__(self, owner: set[EventSubscription]) -> None:
        self._owner = owner
        self._queue: asyncio.Queue[EslEvent | None] = asyncio.Queue()
        self._ended = False

    def push(self, event: EslEvent | None) -> None:
        self._queue.put_nowait(event)

    def __aiter__(self) -> EventSubscription:
        return self

    async def __anext__(self) -> EslEvent:
        if self._ended:
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is None:  # the client was closed
            self._ended = True
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        self._ended = True
        self._owner.discard(self)

    async def __aenter__(self) -> EventSubscription:
        return self


class BackgroundJob:
    """A submitted ``bgapi`` command; ``result()`` waits for its ``BACKGROUND_JOB`` event."""

    def __init__(self, command: str, job_uuid: str, future: asyncio.Future[str]) -> None:
        self.command = command
        self.job_uuid = job_uuid
        self._future = future

    async def result(self) -> str:
        """The job output; ``EslCommandError`` for ``-ERR ...``, ``EslConnectionLost`` if the
        socket broke first (the command may or may not have run: reconcile, don't retry)."""
        text = await asyncio.shield(self._future)
        if text.startswith("-ERR"):
            raise EslCommandError(self.command.split(" ", 1)[0], text)
        return text
