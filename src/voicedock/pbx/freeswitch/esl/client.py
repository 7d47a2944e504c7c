"""Inbound Event Socket (ESL) client for FreeSWITCH on asyncio streams.

Its errors, handles and settings live beside it (``esl/errors.py``, ``esl/handles.py``,
``esl/settings.py``); the wire format in ``esl/wire.py``.

One connection runs at a time. ``EslClient`` owns a ``Supervisor`` with one task that
connects, authenticates, subscribes to events and then runs a reader and a keepalive task that
fail together. When the connection breaks, every command waiting for its reply and every
background job waiting for its ``BACKGROUND_JOB`` fails with ``EslConnectionLost``: an
``originate`` may or may not have happened, so the owner reconciles (``on_reconnect`` hook,
``show_channels``) instead of this client guessing and re-sending. Replies are matched in order
(FreeSWITCH answers the commands of one socket in order, ``mod_event_socket.c`` ``listener_run``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from voicedock.aio import Started, Supervisor
from voicedock.errors import PbxError
from voicedock.pbx.freeswitch.esl.errors import (
    EslAuthError,
    EslClosed,
    EslCommandError,
    EslCommandTimeout,
    EslConnectionLost,
    EslDisconnected,
    EslNotConnected,
)
from voicedock.pbx.freeswitch.esl.handles import BackgroundJob, EventSubscription
from voicedock.pbx.freeswitch.esl.settings import EslSettings
from voicedock.pbx.freeswitch.esl.wire import (
    ApiResponse,
    AuthRequest,
    ChannelInfo,
    CommandReply,
    DisconnectNotice,
    EslEvent,
    EslMessage,
    EslParser,
    EslProtocolError,
    RudeRejection,
    encode_api,
    encode_auth,
    encode_bgapi,
    encode_event_subscription,
    encode_exit,
    encode_sendmsg,
    parse_show_channels_json,
)

__all__ = [
    "EslClient",
    "ReconnectHook",
]

log = logging.getLogger("voicedock.pbx.freeswitch.pbx")
T = TypeVar("T")

ReconnectHook = Callable[["EslClient"], Awaitable[None]]


class _Connection:
    """One authenticated socket and the futures waiting for its replies, in send order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._parser = EslParser()
        self._parsed: deque[EslMessage] = deque()
        self.waiting: deque[asyncio.Future[EslMessage]] = deque()

    async def read_message(self) -> EslMessage:
        while not self._parsed:
            try:
                chunk = await self.reader.read(65536)
            except OSError as exc:
                raise EslConnectionLost(f"event socket read failed: {exc}") from exc
            if not chunk:
                raise EslConnectionLost("FreeSWITCH closed the event socket")
            self._parsed.extend(self._parser.feed(chunk))
        return self._parsed.popleft()

    def send(self, data: bytes) -> asyncio.Future[EslMessage]:
        """Write a command and queue the future for its reply, with no await in between."""
        future: asyncio.Future[EslMessage] = asyncio.get_running_loop().create_future()
        self.writer.write(data)
        self.waiting.append(future)
        return future

    def fail_all(self, error: PbxError) -> None:
        while self.waiting:
            _fail(self.waiting.popleft(), error)

    def close(self) -> None:
        self.writer.close()


def _fail(future: asyncio.Future[T], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
        future.exception()  # retrieved: a caller that gave up must not cause a log warning


def _checked_command_reply(command: str, reply: EslMessage) -> CommandReply:
    if not isinstance(reply, CommandReply):
        raise EslProtocolError(f"expected command/reply, got {reply.content_type!r}")
    if not reply.ok:
        raise EslCommandError(command.split(" ", 1)[0], reply.reply_text)
    return reply


class EslClient(Started):
    """Authenticated, self-healing ESL connection. Use ``async with EslClient(...)``."""

    def __init__(self, settings: EslSettings, *, on_reconnect: ReconnectHook | None = None):
        self._settings = settings
        self._on_reconnect = on_reconnect
        self._conn: _Connection | None = None
        self._connected = asyncio.Event()
        self._jobs: dict[str, asyncio.Future[str]] = {}
        self._subscriptions: set[EventSubscription] = set()
        self._tasks = Supervisor("ESL client", log)
        self._started = False
        self._closing = False
        self._closed = asyncio.Event()
        self.reconnects = 0  # successful reconnects since start (for metrics and tests)

    @property
    def connected(self) -> bool:
        return self._conn is not None

    async def start(self) -> None:
        """Connect and authenticate once (errors propagate), then keep the connection alive."""
        if self._started:
            return
        self._started = True
        conn = await self._open()
        self._conn = conn  # usable as soon as start() returns
        self._connected.set()
        await self._tasks.start()
        self._tasks.spawn(self._supervise(conn), name="esl-supervisor")

    async def wait_connected(self) -> None:
        """Wait until a connection is up (wrap in ``asyncio.timeout``)."""
        await self._connected.wait()

    async def aclose(self) -> None:
        """Close the socket and stop every task; safe to call any number of times."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        try:
            if self._conn is not None:
                with contextlib.suppress(OSError, RuntimeError):
                    self._conn.writer.write(encode_exit())
            for sub in list(self._subscriptions):
                sub.push(None)
            self._subscriptions.clear()
            await self._tasks.aclose()
            if self._conn is not None:  # the supervisor was cancelled before it ever ran
                self._conn.fail_all(EslClosed("ESL client closed"))
                self._conn.close()
                self._conn = None
            for future in self._jobs.values():
                _fail(future, EslClosed("ESL client closed"))
            self._jobs.clear()
        finally:
            self._closed.set()

    # --- commands -----------------------------------------------------------------------

    async def api(self, command: str) -> str:
        """Run ``api <command>`` and return its output; ``-ERR ...`` raises ``EslCommandError``.

        ``api`` blocks this socket until the command finishes: use ``bgapi`` for originate.
        """
        reply = await self._command(encode_api(command))
        if not isinstance(reply, ApiResponse):
            raise EslProtocolError(f"expected api/response, got {reply.content_type!r}")
        if not reply.ok:
            raise EslCommandError(command.split(" ", 1)[0], reply.text)
        return reply.text

    async def bgapi(self, command: str) -> BackgroundJob:
        """Submit ``bgapi <command>`` with our own Job-UUID; await ``job.result()`` for output."""
        job_uuid = str(uuid.uuid4())
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        # Registered before sending: BACKGROUND_JOB may race the command/reply.
        self._jobs[job_uuid] = future
        try:
            reply = _checked_command_reply(
                command, await self._command(encode_bgapi(command, job_uuid))
            )
        except BaseException:
            self._jobs.pop(job_uuid, None)
            raise
        if reply.job_uuid and reply.job_uuid != job_uuid and job_uuid in self._jobs:
            # A FreeSWITCH too old to honour the Job-UUID header picked its own.
            self._jobs[reply.job_uuid] = self._jobs.pop(job_uuid)
            job_uuid = reply.job_uuid
        return BackgroundJob(command, job_uuid, future)

    async def sendmsg(self, uuid: str, headers: Mapping[str, str]) -> str:
        """``sendmsg <uuid>``: queue a call command (``call-command: execute`` …) on a channel
        and return the reply text once queued; ``-ERR invalid session id`` raises."""
        reply = await self._command(encode_sendmsg(uuid, headers))
        return _checked_command_reply(f"sendmsg {uuid}", reply).reply_text

    async def show_channels(self) -> list[ChannelInfo]:
        """The live channels, for reconciliation after a reconnect or restart."""
        return parse_show_channels_json(await self.api("show channels as json"))

    def subscribe(self) -> EventSubscription:
        """Receive every event from now on (the events named in ``EslSettings.events``)."""
        if self._closing:
            raise EslClosed("ESL client closed")
        sub = EventSubscription(self._subscriptions)
        self._subscriptions.add(sub)
        return sub

    async def _command(self, data: bytes) -> EslMessage:
        if self._closing:
            raise EslClosed("ESL client closed")
        conn = self._conn
        if conn is None:
            raise EslNotConnected("no ESL connection; command not sent")
        future = conn.send(data)
        try:
            async with asyncio.timeout(self._settings.command_timeout):
                await conn.writer.drain()
                return await future
        except OSError as exc:
            raise EslConnectionLost(f"event socket write failed: {exc}") from exc
        except TimeoutError as exc:
            raise EslCommandTimeout("no reply from FreeSWITCH in time") from exc

    # --- connection lifecycle ---------------------------------------------------------------

    async def _open(self) -> _Connection:
        s = self._settings
        try:
            async with asyncio.timeout(s.connect_timeout):
                reader, writer = await asyncio.open_connection(s.host, s.port)
        except (OSError, TimeoutError) as exc:
            raise EslNotConnected(f"cannot reach FreeSWITCH ESL: {exc!r}") from exc
        conn = _Connection(reader, writer)
        try:
            async with asyncio.timeout(s.connect_timeout):
                await self._handshake(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    async def _handshake(self, conn: _Connection) -> None:
        greeting = await conn.read_message()
        if isinstance(greeting, RudeRejection):
            raise EslAuthError("FreeSWITCH ESL ACL rejected this client")
        if not isinstance(greeting, AuthRequest):
            raise EslProtocolError(f"expected auth/request, got {greeting.content_type!r}")
        conn.writer.write(encode_auth(self._settings.password))
        reply = await conn.read_message()
        if not isinstance(reply, CommandReply) or not reply.ok:
            raise EslAuthError("FreeSWITCH refused the ESL password")
        if self._settings.events:
            conn.writer.write(encode_event_subscription(self._settings.events, "json"))
            reply = await conn.read_message()
            if not isinstance(reply, CommandReply) or not reply.ok:
                raise EslProtocolError("FreeSWITCH refused the event subscription")

    async def _supervise(self, conn: _Connection | None) -> None:
        backoff = self._settings.reconnect_backoff()
        attempt = 0
        first = True
        while True:
            if conn is None:
                try:
                    conn = await self._open()
                except (PbxError, OSError, TimeoutError) as exc:
                    delay = backoff.next_delay()
                    attempt += 1
                    log.warning("ESL reconnect failed (%s); retrying in %.2fs", exc, delay)
                    await asyncio.sleep(delay)
                    continue
                self.reconnects += 1
                log.info("ESL reconnected after %d attempt(s)", attempt + 1)
            backoff.reset()
            attempt = 0
            error: PbxError = EslConnectionLost("ESL connection lost")
            self._conn = conn
            self._connected.set()
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._read_loop(conn), name="esl-reader")
                    tg.create_task(self._keepalive(conn), name="esl-keepalive")
                    if not first and self._on_reconnect is not None:
                        tg.create_task(self._run_reconnect_hook(), name="esl-reconcile")
            except* (PbxError, OSError) as group:
                first_error = group.exceptions[0]
                if isinstance(first_error, EslConnectionLost):
                    error = first_error
                else:
                    error = EslConnectionLost(f"ESL connection dropped: {first_error}")
                log.warning("ESL connection lost: %s", error)
            finally:
                self._conn = None
                self._connected.clear()
                conn.fail_all(error)
                conn.close()
                jobs, self._jobs = self._jobs, {}
                for future in jobs.values():
                    _fail(future, error)
            first = False
            conn = None

    async def _run_reconnect_hook(self) -> None:
        assert self._on_reconnect is not None
        try:
            await self._on_reconnect(self)
        except PbxError as exc:
            # Reconciliation is best effort; the next reconnect runs it again.
            log.warning("ESL reconnect hook failed: %s", exc)

    async def _read_loop(self, conn: _Connection) -> None:
        while True:
            message = await conn.read_message()
            if isinstance(message, DisconnectNotice):
                raise EslDisconnected("FreeSWITCH sent a disconnect notice")
            if isinstance(message, EslEvent):
                self._dispatch(message)
            elif isinstance(message, CommandReply | ApiResponse):
                if not conn.waiting:
                    raise EslProtocolError("reply without a pending command")
                future = conn.waiting.popleft()
                if not future.done():  # done = the caller timed out and left
                    future.set_result(message)

    def _dispatch(self, event: EslEvent) -> None:
        if event.name == "BACKGROUND_JOB" and event.job_uuid:
            future = self._jobs.pop(event.job_uuid, None)
            if future is not None and not future.done():
                future.set_result(event.event_body or "")
        for sub in list(self._subscriptions):
            sub.push(event)

    async def _keepalive(self, conn: _Connection) -> None:
        """Half-open detection: ``api status`` must answer ``UP ...`` within the timeout."""
        s = self._settings
        while True:
            await asyncio.sleep(s.keepalive_interval)
            future = conn.send(encode_api("status"))
            try:
                async with asyncio.timeout(s.keepalive_timeout):
                    reply = await future
            except TimeoutError:
                raise EslConnectionLost(
                    f"keepalive: no reply in {s.keepalive_timeout}s (half-open socket?)"
                ) from None
            if not isinstance(reply, ApiResponse) or not reply.text.startswith("UP"):
                raise EslConnectionLost("keepalive: unexpected reply to 'api status'")
