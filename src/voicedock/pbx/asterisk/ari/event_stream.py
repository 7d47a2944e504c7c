"""ARI's events websocket, kept connected: ``AriEventStream``.

After ``start`` a ``Supervisor`` holds two tasks: the events reader (``/ari/events?app=<app>``,
HTTP Basic auth, websocket heartbeat so a half-open connection is noticed) and the dispatcher
that hands parsed events to the owner one at a time. Reading and dispatching are separate
because Asterisk drops a slow websocket reader (``websocket_write_timeout``, 100 ms). What the
owner must know the moment Asterisk says it (which channels are in Stasis: a bridge waits on
it) it learns from ``on_arrival``, a synchronous hook the reader calls with each event before
it queues it: the dispatcher's queue may be long when many calls answer together (each answer
is stored before the next event).

While the websocket is up the Stasis app is registered. Originating into an unregistered app
answers the callee and drops them, so callers check ``wait_registered`` first. After every
(re)connect ``on_connected`` runs (the reconcile hook). A lost connection is told to the owner
by ``on_disconnected``, in its place in the events: the dispatcher runs it once every event read
before the drop has been handed on. Lost connections are retried with capped exponential
backoff and jitter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypedDict
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp

from voicedock.aio import Supervisor, deliver
from voicedock.backoff import Backoff
from voicedock.config import AsteriskSettings
from voicedock.errors import PbxError, PbxUnavailable
from voicedock.pbx.asterisk.ari.events import AriEvent, AriEventError, parse_ari_event
from voicedock.pbx.asterisk.ari.rest import AriHttpError, AriRest

__all__ = ["AriEventStream", "ArrivalHook", "EventHandler", "Hook", "StreamHooks"]

log = logging.getLogger("voicedock.pbx.ari")
# How long Asterisk may take to list the app after the events websocket handshake.
_REGISTER_CONFIRM_S = 5.0

EventHandler = Callable[[AriEvent], Awaitable[None]]
ArrivalHook = Callable[[AriEvent], None]
Hook = Callable[[], Awaitable[None]]


class StreamHooks(TypedDict, total=False):
    """What the owner is told beside each event (``AriEventStream.start``'s hooks)."""

    on_connected: Hook | None
    on_disconnected: Hook | None
    on_arrival: ArrivalHook | None


class _Dropped:
    """In the dispatcher's queue: the connection dropped here."""


_DROPPED = _Dropped()


class AriEventStream:
    """The events of one Stasis app, from ``start`` until ``aclose``."""

    def __init__(
        self,
        settings: AsteriskSettings,
        rest: AriRest,
        *,
        heartbeat: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        """``rest``: the client's transport, whose session the websocket is opened from."""
        self._app = settings.app
        self._rest = rest
        self._heartbeat = heartbeat
        self._backoff = backoff or Backoff()
        self._tasks = Supervisor("ARI client", log)
        self._registered = asyncio.Event()
        self._queue: asyncio.Queue[AriEvent | _Dropped] = asyncio.Queue()
        self._on_arrival: ArrivalHook | None = None
        self._on_event: EventHandler | None = None
        self._on_connected: Hook | None = None
        self._on_disconnected: Hook | None = None
        self._closed = False
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.connect_count = 0

    async def start(
        self,
        on_event: EventHandler,
        *,
        on_connected: Hook | None = None,
        on_disconnected: Hook | None = None,
        on_arrival: ArrivalHook | None = None,
    ) -> None:
        """Start reading (does not wait for the connection). ``on_arrival`` sees each event as
        it is read, before ``on_event`` (in the same order): it must be quick and never
        block. ``on_disconnected`` runs after ``on_event`` has seen every event read before
        the connection dropped."""
        if self._tasks.running or self._closed:
            raise PbxError("AriClient.start called twice or after aclose")
        self._on_arrival, self._on_event = on_arrival, on_event
        self._on_connected, self._on_disconnected = on_connected, on_disconnected
        await self._tasks.start()
        self._tasks.spawn(self._read_events(), name="ari-events")
        self._tasks.spawn(deliver(self._queue, self._dispatch, log, "ARI"), name="ari-dispatch")

    async def aclose(self) -> None:
        """Stop the tasks (the session is the client's). Idempotent."""
        self._closed = True
        self._registered.clear()
        await self._tasks.aclose()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def registered(self) -> bool:
        return self._registered.is_set()

    async def wait_registered(self, within: float) -> None:
        """Return once the Stasis app is registered; raise ``PbxUnavailable`` otherwise."""
        try:
            async with asyncio.timeout(within):
                await self._registered.wait()
        except TimeoutError:
            raise PbxUnavailable(
                f"ARI app {self._app!r} is not registered (events websocket down)"
            ) from None

    async def drop_connection(self) -> None:
        """Close the events websocket as a network failure would (the client reconnects)."""
        if self._ws is not None:
            await self._ws.close()

    def url(self) -> str:
        parts = urlsplit(self._rest.base)
        scheme = "wss" if parts.scheme == "https" else "ws"
        query = f"app={quote(self._app, safe='')}"
        return urlunsplit((scheme, parts.netloc, parts.path + "/events", query, ""))

    async def _read_events(self) -> None:
        session = self._rest.session()
        while not self._closed:
            connected = False
            try:
                async with session.ws_connect(
                    self.url(),
                    heartbeat=self._heartbeat,
                    timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
                ) as ws:
                    self._ws = ws
                    await self._confirm_registered()
                    self._backoff.reset()
                    self.connect_count += 1
                    self._registered.set()
                    connected = True
                    log.info("ARI events connected (app %s)", self._app)
                    if self._on_connected is not None:
                        self._tasks.spawn(self._run_hook(self._on_connected, "reconcile"))
                    await self._pump(ws)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.warning("ARI events connection failed: %s", type(exc).__name__)
            finally:
                self._ws = None
                self._registered.clear()
            if self.closed:
                break
            if connected:
                self._queue.put_nowait(_DROPPED)  # after the events read before the drop
            await asyncio.sleep(self._backoff.next_delay())

    async def _confirm_registered(self) -> None:
        """Wait until Asterisk lists the app: it registers it just *after* the handshake, and a
        call originated into it before then is answered and dropped with no event for us."""
        path = f"/applications/{quote(self._app, safe='')}"
        async with asyncio.timeout(_REGISTER_CONFIRM_S):  # TimeoutError: reconnect
            while True:
                try:
                    await self._rest.request("GET", path)
                except AriHttpError as exc:
                    if exc.status != 404:
                        return  # cannot tell (e.g. no permission): the handshake has to do
                else:
                    return
                await asyncio.sleep(0.02)

    async def _pump(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                try:
                    event = parse_ari_event(msg.data)
                except AriEventError as exc:
                    log.warning("dropping malformed ARI event: %s", exc)
                    continue
                if self._on_arrival is not None:
                    try:
                        self._on_arrival(event)
                    except Exception:
                        log.exception("ARI arrival hook failed for %s", type(event).__name__)
                self._queue.put_nowait(event)
            elif msg.type is aiohttp.WSMsgType.ERROR:
                break
        log.warning("ARI events websocket closed (code %s)", ws.close_code)

    async def _dispatch(self, item: AriEvent | _Dropped) -> None:
        if isinstance(item, _Dropped):
            if self._on_disconnected is not None:
                await self._run_hook(self._on_disconnected, "disconnect")
        elif self._on_event is not None:
            await self._on_event(item)

    async def _run_hook(self, hook: Hook, what: str) -> None:
        try:
            await hook()
        except Exception:
            log.exception("ARI %s hook failed", what)
