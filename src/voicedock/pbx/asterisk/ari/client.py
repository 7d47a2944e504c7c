"""ARI client: REST helpers and the events websocket with reconnect.

``AriClient`` owns one aiohttp session and, after ``start``, a ``Supervisor`` with two tasks: the
events reader (``/ari/events?app=<app>``, HTTP Basic auth, websocket heartbeat so a half-open
connection is noticed) and the dispatcher that hands parsed events to the owner one at a time.
Reading and dispatching are separate because Asterisk drops a slow websocket reader
(``websocket_write_timeout``, 100 ms). What the owner must know the moment Asterisk says it
(which channels are in Stasis: a bridge waits on it) it learns from ``on_arrival``, a
synchronous hook the reader calls with each event before it queues it: the dispatcher's queue
may be long when many calls answer together (each answer is stored before the next event).

While the websocket is up the Stasis app is registered. Originating into an unregistered app
answers the callee and drops them, so callers check ``wait_registered`` first. After every
(re)connect ``on_connected`` runs (the reconcile hook). Lost connections are retried with
capped exponential backoff and jitter.

REST errors become ``AriHttpError`` (a ``PbxError`` carrying the HTTP status); connection
errors become ``PbxUnavailable``. Asterisk closes idle keep-alive connections after 15 s, so
the connector keeps them 5 s at most and idempotent requests are retried once on a dropped
connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp

from voicedock.aio import Supervisor
from voicedock.backoff import Backoff
from voicedock.config import AsteriskSettings
from voicedock.errors import PbxError, PbxUnavailable
from voicedock.pbx.asterisk.ari.events import AriEvent, AriEventError, parse_ari_event
from voicedock.pbx.base import require_dtmf_digits

log = logging.getLogger("voicedock.pbx.ari")
# How long Asterisk may take to list the app after the events websocket handshake.
_REGISTER_CONFIRM_S = 5.0

EventHandler = Callable[[AriEvent], Awaitable[None]]
ArrivalHook = Callable[[AriEvent], None]
Hook = Callable[[], Awaitable[None]]

HANGUP_REASONS = frozenset(
    {
        "normal",
        "busy",
        "congestion",
        "no_answer",
        "timeout",
        "rejected",
        "unallocated",
        "normal_unspecified",
        "number_incomplete",
        "codec_mismatch",
        "interworking",
        "failure",
        "answered_elsewhere",
    }
)


class AriHttpError(PbxError):
    """Asterisk answered a REST call with an error status."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"ARI {method} {path}: {status} {message}")
        self.status = status
        self.message = message


def _seg(value: str) -> str:
    return quote(value, safe="")


class AriClient:
    def __init__(
        self,
        settings: AsteriskSettings,
        *,
        request_timeout: float = 5.0,
        heartbeat: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        self._settings = settings
        self._base = settings.ari_url.rstrip("/")
        self._headers = {
            "Authorization": aiohttp.encode_basic_auth(settings.ari_user, settings.ari_password)
        }
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._heartbeat = heartbeat
        self._backoff = backoff or Backoff()
        self._session: aiohttp.ClientSession | None = None
        self._tasks = Supervisor("ARI client", log)
        self._registered = asyncio.Event()
        self._queue: asyncio.Queue[AriEvent] = asyncio.Queue()
        self._on_event: EventHandler | None = None
        self._on_arrival: ArrivalHook | None = None
        self._on_connected: Hook | None = None
        self._on_disconnected: Hook | None = None
        self._closed = False
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.connect_count = 0

    # --- lifecycle --------------------------------------------------------------------------

    async def start(
        self,
        on_event: EventHandler,
        *,
        on_connected: Hook | None = None,
        on_disconnected: Hook | None = None,
        on_arrival: ArrivalHook | None = None,
    ) -> None:
        """Open the session and start the events websocket (does not wait for it).
        ``on_arrival`` sees each event as it is read, before ``on_event`` (in the same order):
        it must be quick and never block."""
        if self._tasks.running or self._closed:
            raise PbxError("AriClient.start called twice or after aclose")
        self._on_event, self._on_connected, self._on_disconnected = (
            on_event,
            on_connected,
            on_disconnected,
        )
        self._on_arrival = on_arrival
        self._open_session()
        await self._tasks.start()
        self._tasks.spawn(self._read_events(), name="ari-events")
        self._tasks.spawn(self._dispatch(), name="ari-dispatch")

    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(keepalive_timeout=5.0, limit=200)
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=self._timeout, connector=connector
            )
        return self._session

    async def aclose(self) -> None:
        """Stop the tasks and close the session. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._registered.clear()
        await self._tasks.aclose()
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> AriClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def registered(self) -> bool:
        return self._registered.is_set()

    async def wait_registered(self, within: float = 5.0) -> None:
        """Return once the Stasis app is registered; raise ``PbxUnavailable`` otherwise."""
        if self._closed:
            raise PbxUnavailable("ARI client is closed")
        try:
            async with asyncio.timeout(within):
                await self._registered.wait()
        except TimeoutError:
            raise PbxUnavailable(
                f"ARI app {self._settings.app!r} is not registered (events websocket down)"
            ) from None

    # --- events websocket -------------------------------------------------------------------

    async def drop_events_connection(self) -> None:
        """Close the events websocket as a network failure would (the client reconnects)."""
        if self._ws is not None:
            await self._ws.close()

    def events_url(self) -> str:
        parts = urlsplit(self._base)
        scheme = "wss" if parts.scheme == "https" else "ws"
        query = f"app={quote(self._settings.app, safe='')}"
        return urlunsplit((scheme, parts.netloc, parts.path + "/events", query, ""))

    async def _read_events(self) -> None:
        session = self._open_session()
        while not self._closed:
            try:
                async with session.ws_connect(
                    self.events_url(),
                    heartbeat=self._heartbeat,
                    timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
                ) as ws:
                    self._ws = ws
                    await self._confirm_registered()
                    self._backoff.reset()
                    self.connect_count += 1
                    self._registered.set()
                    log.info("ARI events connected (app %s)", self._settings.app)
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
            if self._on_disconnected is not None:
                await self._run_hook(self._on_disconnected, "disconnect")
            await asyncio.sleep(self._backoff.next_delay())

    async def _confirm_registered(self) -> None:
        """Wait until Asterisk lists the app: it registers it just *after* the handshake, and a
        call originated into it before then is answered and dropped with no event for us."""
        path = f"/applications/{quote(self._settings.app, safe='')}"
        async with asyncio.timeout(_REGISTER_CONFIRM_S):  # TimeoutError: reconnect
            while True:
                try:
                    await self.request("GET", path)
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

    async def _dispatch(self) -> None:
        while True:
            event = await self._queue.get()
            if self._on_event is None:
                continue
            try:
                await self._on_event(event)
            except Exception:
                # One bad event must not stop the stream for every other call.
                log.exception("ARI event handler failed for %s", type(event).__name__)

    async def _run_hook(self, hook: Hook, what: str) -> None:
        try:
            await hook()
        except Exception:
            log.exception("ARI %s hook failed", what)

    # --- REST -------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        retry_dropped: bool | None = None,
    ) -> Any:
        """One REST call; JSON result (or None for 204). Raises AriHttpError/PbxUnavailable."""
        if self._closed:
            raise PbxUnavailable("ARI client is closed")
        session = self._open_session()
        retry = method in ("GET", "DELETE") if retry_dropped is None else retry_dropped
        for attempt in (1, 2):
            try:
                async with session.request(
                    method, self._base + path, params=params, json=body
                ) as resp:
                    if resp.status == 204:
                        return None
                    text = await resp.text()
                    if resp.status >= 400:
                        raise AriHttpError(method, path, resp.status, _error_message(text))
                    return _json(text)
            except aiohttp.ServerDisconnectedError:
                # Asterisk closed a kept-alive connection under us.
                if attempt == 1 and retry:
                    continue
                raise PbxUnavailable(f"ARI {method} {path}: connection dropped") from None
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise PbxUnavailable(f"ARI {method} {path}: {type(exc).__name__}") from None
        raise PbxUnavailable(f"ARI {method} {path}: connection dropped")

    async def originate(
        self,
        *,
        endpoint: str,
        app_args: str,
        caller_id: str,
        channel_id: str,
        timeout_seconds: int,
        variables: Mapping[str, str] | None = None,
        formats: str | None = None,
    ) -> None:
        """``POST /channels`` into our app with our channel id; returns before answer.

        A request whose connection dropped is sent once more: our channel id makes Asterisk
        refuse a duplicate (409), which then means the first attempt got through.
        """
        body: dict[str, Any] = {
            "endpoint": endpoint,
            "app": self._settings.app,
            "appArgs": app_args,
            "callerId": caller_id,
            "timeout": timeout_seconds,
            "channelId": channel_id,
        }
        if variables:
            body["variables"] = dict(variables)
        if formats:
            body["formats"] = formats
        try:
            await self.request("POST", "/channels", body=body, retry_dropped=False)
        except PbxUnavailable:
            try:
                await self.request("POST", "/channels", body=body, retry_dropped=False)
            except AriHttpError as exc:
                if exc.status != 409:
                    raise

    async def hangup_channel(self, channel_id: str, reason: str = "normal") -> bool:
        """DELETE the channel; False when it was already gone."""
        if reason not in HANGUP_REASONS:
            reason = "normal"
        try:
            await self.request("DELETE", f"/channels/{_seg(channel_id)}", params={"reason": reason})
        except AriHttpError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def subscribe_channel(self, channel_id: str) -> None:
        """Keep receiving a channel's events after it leaves Stasis (its ChannelDestroyed)."""
        path = f"/applications/{_seg(self._settings.app)}/subscription"
        await self.request("POST", path, params={"eventSource": f"channel:{channel_id}"})

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{_seg(channel_id)}/answer")

    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str, priority: int = 1
    ) -> None:
        params = {"context": context, "extension": extension, "priority": str(priority)}
        await self.request("POST", f"/channels/{_seg(channel_id)}/continue", params=params)

    async def send_dtmf(self, channel_id: str, digits: str) -> None:
        """``POST /channels/{id}/dtmf``: play the (validated) digits on the channel."""
        params = {"dtmf": require_dtmf_digits(digits)}
        await self.request("POST", f"/channels/{_seg(channel_id)}/dtmf", params=params)

    async def list_channels(self) -> list[dict[str, Any]]:
        result = await self.request("GET", "/channels")
        return [c for c in result if isinstance(c, dict)] if isinstance(result, list) else []

    async def startup_time(self) -> str:
        """Asterisk's start time: it changes when the PBX restarted."""
        result = await self.request("GET", "/asterisk/info", params={"only": "status"})
        status = result.get("status") if isinstance(result, dict) else None
        return str(status.get("startup_time", "")) if isinstance(status, dict) else ""


def _json(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise PbxError("ARI returned a body that is not JSON") from None


def _error_message(text: str) -> str:
    try:
        data = _json(text)
    except PbxError:
        return text[:200]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or "")[:200]
    return text[:200]
