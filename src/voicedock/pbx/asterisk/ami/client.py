"""A safe AMI client on panoramisk 1.4.

panoramisk is used for the wire work only (``AMIProtocol`` parsing, ``Action`` serialising and
ActionID matching). Its connection management is switched off because it is unsafe for us:

* it re-sends unanswered actions after a reconnect (``send_awaiting_actions``), which would
  place a second call for an ``Originate`` or transfer twice. Here every pending action fails
  with ``PbxUnavailable`` when the connection goes, and the owner reconciles instead;
* its pinger never checks the reply, so a half-open TCP connection goes unnoticed. Here a
  ``Ping`` is awaited with a timeout and a missing ``Pong`` forces a reconnect;
* it reconnects at a fixed interval forever; here with capped exponential backoff + jitter;
* futures of actions that already had one reply are dropped unresolved on disconnect.

Every header goes through ``ami/messages.py`` ``check_headers`` before it reaches panoramisk.
``Originate`` is always ``Async: true`` (without it panoramisk kills the connection); its
``OriginateResponse`` arrives in the action's result, never to event callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TypedDict, TypeVar, Unpack

from panoramisk import Manager
from panoramisk.actions import Action
from panoramisk.ami_protocol import AMIProtocol

from voicedock.aio import Closable, Supervisor, deliver
from voicedock.backoff import Backoff
from voicedock.config import AsteriskSettings
from voicedock.errors import PbxError, PbxUnavailable
from voicedock.pbx.asterisk.ami.messages import (
    AmiEvent,
    AmiHeaders,
    AmiOriginateResponse,
    AmiReply,
    check_headers,
    parse_ami_event,
    parse_ami_reply,
)

log = logging.getLogger("voicedock.pbx.ami")

AmiEventHandler = Callable[[AmiEvent], Awaitable[None]]
Hook = Callable[[], Awaitable[None]]
T = TypeVar("T")


class _ManagerConfig(TypedDict):
    """What ``_SafeManager`` hands panoramisk's ``Manager``."""

    host: str
    port: int
    username: str
    secret: str
    ping_delay: int


class _TrackedAction(Action):  # type: ignore[misc]
    """An Action that also exposes its first reply (``Originate successfully queued``)."""

    def __init__(self, headers: AmiHeaders) -> None:
        super().__init__(dict(headers))
        self.first_reply: asyncio.Future[AmiReply] = asyncio.get_running_loop().create_future()
        self.first_reply.add_done_callback(_consume)
        self.future.add_done_callback(_consume)

    def add_message(self, message: Mapping[str, object]) -> bool | None:
        if not self.first_reply.done():
            self.first_reply.set_result(parse_ami_reply(message))
        completed: bool | None = super().add_message(message)
        return completed

    def fail(self, exc: BaseException) -> None:
        for fut in (self.first_reply, self.future):
            if not fut.done():
                fut.set_exception(exc)


def _consume(fut: asyncio.Future[T]) -> None:
    # Mark failures as retrieved: a failed pending action is normal on disconnect.
    if not fut.cancelled():
        fut.exception()


class _SafeManager(Manager):  # type: ignore[misc]
    """panoramisk's Manager with reconnect, unchecked pings and re-sending switched off."""

    def __init__(self, on_lost: Callable[[], None], **config: Unpack[_ManagerConfig]) -> None:
        super().__init__(**config)
        self._on_lost = on_lost

    def connection_made(self, f: object) -> None:  # pragma: no cover - never used
        raise PbxError("connections are made by AmiClient")

    def ping(self) -> None:
        """The checked ping lives in AmiClient."""

    async def send_awaiting_actions(self, *_: object) -> None:
        # NEVER re-send after a reconnect: an Originate would place a second call.
        self.awaiting_actions.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        self._connected = False
        self.awaiting_actions.clear()
        self._on_lost()


class AmiClient(Closable):
    def __init__(
        self,
        settings: AsteriskSettings,
        *,
        ping_interval: float = 5.0,
        ping_timeout: float = 3.0,
        connect_timeout: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        self._settings = settings
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._connect_timeout = connect_timeout
        self._backoff = backoff or Backoff()
        self._manager = _SafeManager(
            self._mark_lost,
            host=settings.ami_host,
            port=settings.ami_port,
            username=settings.ami_user,
            secret=settings.ami_secret,
            ping_delay=3600,
        )
        self._manager.register_event("*", self._on_message)
        self._protocol: AMIProtocol | None = None
        self._inflight: dict[str, _TrackedAction] = {}
        self._ready = asyncio.Event()
        self._lost = asyncio.Event()
        self._queue: asyncio.Queue[AmiEvent] = asyncio.Queue()
        self._tasks = Supervisor("AMI client", log)
        self._on_connected: Hook | None = None
        self._closed = False
        self.connect_count = 0

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self, on_event: AmiEventHandler, *, on_connected: Hook | None = None) -> None:
        if self._tasks.running or self._closed:
            raise PbxError("AmiClient.start called twice or after aclose")
        self._on_connected = on_connected
        await self._tasks.start()
        self._tasks.spawn(self._supervise(), name="ami-connection")
        self._tasks.spawn(deliver(self._queue, on_event, log, "AMI"), name="ami-dispatch")

    async def aclose(self) -> None:
        """Disconnect, fail pending actions, stop the tasks. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._tasks.aclose()
        self._teardown("AMI client closed")

    async def __aenter__(self) -> AmiClient:
        return self

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    async def wait_connected(self, within: float = 5.0) -> None:
        try:
            async with asyncio.timeout(within):
                await self._ready.wait()
        except TimeoutError:
            raise PbxUnavailable("AMI is not connected") from None

    def drop_connection(self) -> None:
        """Close the TCP connection as if the network failed (the client reconnects)."""
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.abort()

    # --- connection -------------------------------------------------------------------------

    async def _supervise(self) -> None:
        while True:
            try:
                await self._connect()
            except (OSError, TimeoutError, PbxError) as exc:
                log.warning("AMI connect failed: %s", type(exc).__name__)
                self._teardown("AMI connect failed")
                await asyncio.sleep(self._backoff.next_delay())
                continue
            self._backoff.reset()
            self.connect_count += 1
            self._ready.set()
            log.info("AMI connected")
            if self._on_connected is not None:
                self._tasks.spawn(self._run_hook(self._on_connected))
            await self._watch()
            self._ready.clear()
            self._teardown("AMI connection lost")
            log.warning("AMI connection lost; reconnecting")
            await asyncio.sleep(self._backoff.next_delay())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        self._lost.clear()
        async with asyncio.timeout(self._connect_timeout):
            _, protocol = await loop.create_connection(
                AMIProtocol, self._settings.ami_host, self._settings.ami_port
            )
            # No await between here and the Login write: the banner cannot be parsed before
            # the protocol knows its factory.
            manager = self._manager
            manager.loop = loop
            manager.protocol = protocol
            protocol.queue = deque()
            protocol.factory = manager
            protocol.log = log
            protocol.config = manager.config
            protocol.encoding = manager.encoding = "utf8"
            manager.responses = protocol.responses = {}
            manager._connected = True
            self._protocol = protocol
            login = check_headers(
                {
                    "Action": "Login",
                    "Username": self._settings.ami_user,
                    "Secret": self._settings.ami_secret,
                    "Events": "on",
                }
            )
            reply = await self._send(login).first_reply
        if not reply.success:
            raise PbxError("AMI login refused")

    async def _watch(self) -> None:
        """Return when the connection is lost or a Ping goes unanswered (half-open)."""
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._ping_interval):
                    await self._lost.wait()
            if self._lost.is_set():
                return
            if not await self.ping():
                log.warning("AMI Ping unanswered: treating the connection as dead")
                return

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(self._ping_timeout):
                reply = await self._send({"Action": "Ping"}).first_reply
        except (TimeoutError, PbxError):
            return False
        return reply.success and reply.ping.lower() == "pong"

    def _mark_lost(self) -> None:
        self._ready.clear()
        self._lost.set()

    def _teardown(self, why: str) -> None:
        self._ready.clear()
        protocol, self._protocol = self._protocol, None
        if protocol is not None:
            protocol.closed = True
            protocol.transport.abort()
        self._manager.awaiting_actions.clear()
        pending, self._inflight = self._inflight, {}
        for action in pending.values():
            action.fail(PbxUnavailable(f"{why} before the action completed; not re-sent"))

    # --- actions ----------------------------------------------------------------------------

    def _send(self, headers: AmiHeaders) -> _TrackedAction:
        protocol = self._protocol
        if protocol is None or protocol.closed:
            raise PbxUnavailable("AMI is not connected")
        action = _TrackedAction(headers)
        key = str(action.id)
        self._inflight[key] = action
        action.future.add_done_callback(lambda _f: self._inflight.pop(key, None))
        protocol.send(action, as_list=None)  # None: let panoramisk detect multi-replies
        return action

    async def originate(
        self, headers: Mapping[str, str | list[str]]
    ) -> asyncio.Future[AmiOriginateResponse]:
        """Queue an Originate; return the future of its ``OriginateResponse``.

        Returns once Asterisk replied ``Originate successfully queued``. If the connection
        drops before that, ``PbxUnavailable`` is raised and the action is NOT re-sent.
        """
        checked = check_headers(headers)
        if checked.get("Action") != "Originate" or checked.get("Async") != "true":
            raise PbxError("originate needs an Originate action with Async: true")
        if not self.connected:
            raise PbxUnavailable("AMI is not connected")
        action = self._send(checked)
        async with asyncio.timeout(self._connect_timeout):
            reply = await action.first_reply
        if not reply.success:
            raise PbxError(f"AMI Originate refused: {reply.message}")
        outcome: asyncio.Future[AmiOriginateResponse] = asyncio.get_running_loop().create_future()
        outcome.add_done_callback(_consume)
        action.future.add_done_callback(lambda f: _settle_originate(f, outcome))
        return outcome

    # --- events -----------------------------------------------------------------------------

    def _on_message(self, _manager: object, message: Mapping[str, object]) -> None:
        self._queue.put_nowait(parse_ami_event(message))

    async def _run_hook(self, hook: Hook) -> None:
        try:
            await hook()
        except Exception:
            log.exception("AMI connect hook failed")


def _settle_originate(
    done: asyncio.Future[object], outcome: asyncio.Future[AmiOriginateResponse]
) -> None:
    if outcome.done():
        return
    if done.cancelled():
        outcome.set_exception(PbxUnavailable("AMI Originate was cancelled"))
        return
    exc = done.exception()
    if exc is not None:
        outcome.set_exception(exc)
        return
    result = done.result()
    messages: list[object] = list(result) if isinstance(result, list) else [result]
    for message in reversed(messages):
        event = parse_ami_event(message) if isinstance(message, Mapping) else None
        if isinstance(event, AmiOriginateResponse):
            outcome.set_result(event)
            return
    outcome.set_exception(PbxError("AMI Originate finished without an OriginateResponse"))
