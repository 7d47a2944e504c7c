"""ARI client: Asterisk's REST interface and its events websocket, for one Stasis app.

``AriClient`` is what the adapter and its parts hold: the REST transport (``ari/rest``: one
aiohttp session, errors translated, dropped keep-alive connections retried) with the channel
and Asterisk calls voicedock makes, and the events websocket (``ari/event_stream``: registered
app, reconnect, the reader and the dispatcher, ``on_arrival``). The bridge, externalMedia and
channel-variable calls live with the media legs and the transfers that make them, so the
client stays a transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Unpack
from urllib.parse import quote

from voicedock.aio import Closable
from voicedock.backoff import Backoff
from voicedock.config import AsteriskSettings
from voicedock.domain.json import JsonValue
from voicedock.errors import PbxUnavailable
from voicedock.pbx.asterisk.ari.event_stream import AriEventStream, EventHandler, StreamHooks
from voicedock.pbx.asterisk.ari.events import AriChannel, channel_from_json
from voicedock.pbx.asterisk.ari.rest import AriHttpError, AriRest, RequestOptions
from voicedock.pbx.base import require_dtmf_digits

if TYPE_CHECKING:
    from voicedock.pbx.asterisk.server_info import AsteriskServerInfo

__all__ = ["HANGUP_REASONS", "AriClient"]

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


def _seg(value: str) -> str:
    return quote(value, safe="")


class AriClient(Closable):
    def __init__(
        self,
        settings: AsteriskSettings,
        *,
        request_timeout: float = 5.0,
        heartbeat: float = 5.0,
        backoff: Backoff | None = None,
    ) -> None:
        self._settings = settings
        self._rest = AriRest(settings, request_timeout=request_timeout)
        self._events = AriEventStream(settings, self._rest, heartbeat=heartbeat, backoff=backoff)
        self._closed = False

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self, on_event: EventHandler, **hooks: Unpack[StreamHooks]) -> None:
        """Open the session and start the events websocket (does not wait for it).
        ``on_arrival`` sees each event as it is read, before ``on_event`` (in the same order):
        it must be quick and never block."""
        await self._events.start(on_event, **hooks)

    async def aclose(self) -> None:
        """Stop the tasks and close the session. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._events.aclose()
        await self._rest.aclose()

    async def __aenter__(self) -> AriClient:
        return self

    @property
    def closed(self) -> bool:
        return self._closed

    # --- events websocket -------------------------------------------------------------------

    @property
    def registered(self) -> bool:
        return self._events.registered

    @property
    def connect_count(self) -> int:
        """Events connections made since start (each reconnect counts one up)."""
        return self._events.connect_count

    async def wait_registered(self, within: float = 5.0) -> None:
        """Return once the Stasis app is registered; raise ``PbxUnavailable`` otherwise."""
        if self._closed:
            raise PbxUnavailable("ARI client is closed")
        await self._events.wait_registered(within)

    async def drop_events_connection(self) -> None:
        """Close the events websocket as a network failure would (the client reconnects)."""
        await self._events.drop_connection()

    def events_url(self) -> str:
        return self._events.url()

    @property
    def dialing(self) -> asyncio.Semaphore:
        """Held while a connection to the server's HTTP port is dialed (``ari/rest.py``)."""
        return self._rest.dialing

    # --- REST -------------------------------------------------------------------------------

    async def request(self, method: str, path: str, **options: Unpack[RequestOptions]) -> JsonValue:
        """One REST call; JSON result (or None for 204). Raises AriHttpError/PbxUnavailable."""
        if self._closed:
            raise PbxUnavailable("ARI client is closed")
        return await self._rest.request(method, path, **options)

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
        body: dict[str, JsonValue] = {
            "endpoint": endpoint,
            "app": self._settings.app,
            "appArgs": app_args,
            "callerId": caller_id,
            "timeout": timeout_seconds,
            "channelId": channel_id,
        }
        if variables:
            body["variables"] = {name: value for name, value in variables.items()}
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

    async def list_channels(self) -> list[AriChannel]:
        """Every channel Asterisk has now (``GET /channels``)."""
        result = await self.request("GET", "/channels")
        listed = result if isinstance(result, list) else []
        return [channel for raw in listed if (channel := channel_from_json(raw)) is not None]

    async def server_info(self) -> AsteriskServerInfo:
        """The server's version and running modules (``asterisk.server_info``)."""
        from voicedock.pbx.asterisk.server_info import read_server_info

        return await read_server_info(self)

    async def startup_time(self) -> str:
        """Asterisk's start time: it changes when the PBX restarted."""
        result = await self.request("GET", "/asterisk/info", params={"only": "status"})
        status = result.get("status") if isinstance(result, dict) else None
        return str(status.get("startup_time", "")) if isinstance(status, dict) else ""
