"""Errors of the FreeSWITCH Event Socket client and the two handles it gives out.

``EventSubscription`` (events for one consumer) and ``BackgroundJob`` (one ``bgapi`` command)
live here so ``freeswitch.esl`` stays about the connection itself; every name is re-exported
from ``voicedock.pbx.freeswitch.esl``.

    PbxError
    ├── EslConnectionLost     — the socket broke; pending commands fail with it (never re-sent)
    │   └── EslDisconnected   — FreeSWITCH sent text/disconnect-notice
    ├── EslNotConnected       — a command was issued while (re)connecting; nothing was sent
    ├── EslAuthError          — wrong password or ACL rejection
    ├── EslCommandError       — ``-ERR`` reply to a command / api call / background job
    ├── EslCommandTimeout     — no reply in time (the command may still have run)
    ├── EslProtocolError      — bytes that are not ESL (from ``freeswitch.esl_wire``)
    └── EslClosed             — you closed the client (different from the peer breaking it)
    ConfigError
    └── EslDefaultPassword    — refusing the well-known default password ``ClueCon``
"""

from __future__ import annotations

import asyncio

from voicedock.errors import ConfigError, PbxError, PbxUnavailable
from voicedock.pbx.freeswitch.esl_wire import EslEvent


class EslConnectionLost(PbxError):
    """The ESL socket broke while this command or job was outstanding."""


class EslDisconnected(EslConnectionLost):
    """FreeSWITCH announced the end of the socket (``text/disconnect-notice``)."""


class EslNotConnected(PbxUnavailable):
    """No authenticated ESL connection right now; the command was not sent."""


class EslAuthError(PbxError):
    """FreeSWITCH refused the password (or the inbound ACL refused this client)."""


class EslCommandError(PbxError):
    """FreeSWITCH answered ``-ERR ...``; ``reply`` holds its text."""

    def __init__(self, command: str, reply: str) -> None:
        super().__init__(f"{command}: {reply.strip()}")
        self.command = command
        self.reply = reply.strip()


class EslCommandTimeout(PbxError):
    """No reply in time; the command may still run (do not re-send a side effect)."""


class EslClosed(PbxError):
    """The client was closed by its owner."""


class EslDefaultPassword(ConfigError):
    def __init__(self) -> None:
        super().__init__("freeswitch.password", "the default ESL password 'ClueCon' is refused")


class EventSubscription:
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

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


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
