"""Media legs of Asterisk calls: a mixing bridge plus an externalMedia channel on the server's
transport (chan_websocket, RTP or AudioSocket: ``transports``).

``AsteriskMedia`` creates both for a live call (the two requests in flight together) and
bridges the media leg and the remote leg in the background, each the moment it is in Stasis
(the lab showed ``addChannel`` before StasisStart is refused; the owner calls
``entered_stasis`` as the event arrives, not once its event queue reaches it), the two
``addChannel`` requests in flight together. Until the caller's ``addChannel`` has completed, a
transfer must not act on the caller (``settled``): a warm transfer's ``removeChannel`` sent
meanwhile is refused ("422 Channel not in this bridge", the lab), and a blind transfer's
``continue`` can take the caller out of Stasis before it is bridged. The bridge/externalMedia
REST calls live here, not in ``AriClient``, so the client stays a transport. Bridge and
media-leg ids derive from our call id with anything but ``[A-Za-z0-9._-]`` dropped: inbound
call ids carry a ``+`` that has no place in ARI ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from voicedock.aio import all_of
from voicedock.domain.json import JsonObject, JsonValue, json_object
from voicedock.errors import PbxError
from voicedock.pbx.adapter import Spawn
from voicedock.pbx.asterisk.ari.client import AriClient
from voicedock.pbx.asterisk.ari.rest import AriHttpError
from voicedock.pbx.asterisk.media.transports import MediaTransports, PreparedLeg
from voicedock.pbx.legs import CallRegistry

if TYPE_CHECKING:
    from voicedock.media.call_media import CallMedia
    from voicedock.pbx.asterisk.media.acceptor import MediaAcceptor
    from voicedock.pbx.asterisk.media.clocked_session import ClockedSession


@dataclass(frozen=True, slots=True)
class MediaLeg:
    """A chan_websocket leg voicedock connects itself (``AsteriskMedia.open_websocket``)."""

    channel_id: str
    bridge_id: str
    url: str  # where voicedock connects: /media/<MEDIA_WEBSOCKET_CONNECTION_ID>


_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]")
# Both legs must reach Stasis within this long or the bridging is abandoned.
_BRIDGE_DEADLINE = 60.0
# How long a call's media waits for that bridging before the call is given up.
_BRIDGE_WAIT = 10.0


def leg_id(call_id: str, suffix: str) -> str:
    return f"{_UNSAFE_ID_CHARS.sub('', call_id)}-{suffix}"


def _seg(value: str) -> str:
    return quote(value, safe="")


async def create_bridge(ari: AriClient, bridge_id: str, bridge_type: str = "mixing") -> str:
    params = {"type": bridge_type, "bridgeId": bridge_id}
    result = await ari.request("POST", "/bridges", params=params)
    return str(result["id"]) if isinstance(result, dict) and "id" in result else bridge_id


async def add_channel(ari: AriClient, bridge_id: str, channel_id: str) -> None:
    params = {"channel": channel_id}
    await ari.request("POST", f"/bridges/{_seg(bridge_id)}/addChannel", params=params)


async def remove_channel(ari: AriClient, bridge_id: str, channel_id: str) -> None:
    params = {"channel": channel_id}
    await ari.request("POST", f"/bridges/{_seg(bridge_id)}/removeChannel", params=params)


async def destroy_bridge(ari: AriClient, bridge_id: str) -> bool:
    """Delete a bridge; ``False`` if it was already gone (or going)."""
    try:
        await ari.request("DELETE", f"/bridges/{_seg(bridge_id)}")
    except AriHttpError as exc:
        # 409 "Bridge not in Stasis application": a concurrent delete got there first.
        if exc.status in (404, 409):
            return False
        raise
    return True


async def external_media(
    ari: AriClient,
    *,
    app: str,
    media_format: str,
    params: Mapping[str, str],
    channel_id: str | None = None,
    data: str | None = None,
    variables: Mapping[str, str] | None = None,
) -> JsonObject:
    """``POST /channels/externalMedia`` with a transport's ``params`` (``transports``): the
    new channel's variables (``MEDIA_WEBSOCKET_CONNECTION_ID``, ``UNICASTRTP_LOCAL_PORT``, …)."""
    query = {"app": app, "format": media_format, **params}
    optional = {"channelId": channel_id, "data": data}
    query.update({k: v for k, v in optional.items() if v})
    body: dict[str, JsonValue] | None = None
    if variables:
        body = {"variables": {name: value for name, value in variables.items()}}
    result = await ari.request("POST", "/channels/externalMedia", params=query, body=body)
    channel = json_object(result)
    if channel is None:
        raise PbxError("ARI externalMedia returned no channel")
    return json_object(channel.get("channelvars")) or {}


class AsteriskMedia:
    """Media legs for the calls in ``calls``; tracks which channels are in Stasis."""

    def __init__(
        self,
        ari: AriClient,
        app: str,
        calls: CallRegistry,
        spawn: Spawn,
        transports: MediaTransports,
    ) -> None:
        """``transports``: how the server's legs travel (``media/transports``)."""
        self._ari = ari
        self._app = app
        self._calls = calls
        self._spawn = spawn
        self.transports = transports
        self._in_stasis: dict[str, asyncio.Event] = {}
        self._bridged: dict[str, asyncio.Event] = {}  # by bridge id: both legs are in it
        # By call id, while the media's set-up may still move the caller into its bridge.
        self._placing: dict[str, asyncio.Event] = {}
        # By media leg id: the leg's channel went (Asterisk could not connect it, or ended it).
        self._gone: dict[str, asyncio.Event] = {}
        # RTP and AudioSocket legs: by media leg id, told when their channel goes; by call id,
        # handed the caller's keys (their media carries none).
        self._clocked: dict[str, ClockedSession] = {}
        self._keys: dict[str, ClockedSession] = {}

    @property
    def acceptor(self) -> MediaAcceptor | None:
        """Client-mode websocket legs: where Asterisk connects to voicedock."""
        return self.transports.acceptor

    def entered_stasis(self, channel_id: str) -> None:
        self._stasis_event(channel_id).set()

    def left_stasis(self, channel_id: str) -> None:
        self._in_stasis.pop(channel_id, None)
        if (gone := self._gone.get(channel_id)) is not None:
            gone.set()
        if (session := self._clocked.get(channel_id)) is not None:
            session.peer_gone()

    def caller_key(self, call_id: str, digit: str) -> None:
        """ARI reported a key of the call's caller: to its media, where the media carries
        none of its own."""
        if (session := self._keys.get(call_id)) is not None:
            session.caller.digit(digit)

    async def open(self, call_id: str, leg: PreparedLeg, *, media_id: str) -> JsonObject:
        """The call's bridge and media leg ``media_id``, as ``leg`` says; Asterisk's variables
        of the new channel."""
        legs = self._calls.get(call_id)
        if legs is None or legs.ended:
            raise PbxError("no live call with this id")
        bridge_id = leg_id(call_id, "bridge")
        self._placing.setdefault(call_id, asyncio.Event())  # set once the caller is bridged
        # Both ids are the call's before either request: ``release`` deletes whichever exists.
        self._calls.attach_bridge(call_id, bridge_id)
        self._calls.attach_channel(call_id, media_id)
        channel_vars: JsonObject = {}

        async def media_leg() -> None:
            nonlocal channel_vars
            channel_vars = await external_media(
                self._ari,
                app=self._app,
                media_format=leg.format,
                params=leg.params(),
                channel_id=media_id,
                data=leg.data(call_id),
                variables=leg.variables(),
            )

        async def bridge() -> None:
            await create_bridge(self._ari, bridge_id)

        try:
            await all_of(bridge(), media_leg())  # independent: in flight together
        except BaseException:
            self._placed(call_id)  # nothing will bridge the caller
            raise
        if self._calls.get(call_id) is not legs or bridge_id not in legs.bridges:
            # Released while both were being created (the caller hung up meanwhile): its
            # deletes may have reached Asterisk first, so what was created goes now, and
            # nothing is left waiting for a bridging that will never come.
            await self._delete(channel=media_id, bridge=bridge_id)
            raise PbxError("the call's media was released while it was set up")
        self._bridged[bridge_id] = asyncio.Event()
        self._spawn(self._bridge_when_ready(call_id, bridge_id, legs.main_channel, media_id))
        return channel_vars

    async def open_websocket(self, call_id: str, *, media_format: str = "ulaw") -> MediaLeg:
        """The call's bridge and a chan_websocket leg, bridged once both legs are in Stasis,
        whatever transport the server's calls use: the caller connects ``url`` itself (what
        drives a leg by hand, without a conversation)."""
        media_id = leg_id(call_id, "media")
        leg = await self.transports.prepare(
            call_id=call_id,
            leg=media_id,
            media_format=media_format,
            server_websocket=True,
            transport="websocket",
        )
        channel_vars = await self.open(call_id, leg, media_id=media_id)
        connection = str(channel_vars.get("MEDIA_WEBSOCKET_CONNECTION_ID", ""))
        base = self._ari.events_url().rsplit("/ari/events", 1)[0]
        return MediaLeg(media_id, leg_id(call_id, "bridge"), f"{base}/media/{connection}")

    async def settled(self, call_id: str) -> None:
        """Returns once the call's media set-up no longer moves the caller: its
        ``addChannel`` into the call's bridge completed (or failed), at once when no set-up is
        under way. What a transfer waits for before it acts on the caller. Bounded; never
        raises."""
        placing = self._placing.get(call_id)
        if placing is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_BRIDGE_WAIT):
                await placing.wait()

    def _placed(self, call_id: str) -> None:
        if (placing := self._placing.pop(call_id, None)) is not None:
            placing.set()

    @contextlib.asynccontextmanager
    async def session(self, call_id: str, *, media_format: str) -> AsyncIterator[CallMedia]:
        """Open the call's media leg on the server's transport; release it on exit (the call
        stays up)."""
        media_id = leg_id(call_id, "media")
        leg: PreparedLeg | None = None
        try:
            leg = await self.transports.prepare(
                call_id=call_id, leg=media_id, media_format=media_format
            )
            gone = self._gone[media_id] = asyncio.Event()
            channel_vars = await self.open(call_id, leg, media_id=media_id)
            async with await leg.connect(channel_vars, gone) as media:
                self._watch(call_id, media_id, media, keys=leg.keys_over_ari)
                # Audio sent before the caller's leg is in the bridge would never reach them
                # (the first message would be lost).
                try:
                    async with asyncio.timeout(_BRIDGE_WAIT):
                        await self._bridged[leg_id(call_id, "bridge")].wait()
                except TimeoutError:
                    raise PbxError("the call's legs were not bridged in time") from None
                yield media
        finally:
            if leg is not None:
                leg.cancel()
            self._gone.pop(media_id, None)
            self._clocked.pop(media_id, None)
            self._keys.pop(call_id, None)
            await self.release(call_id)

    def _watch(self, call_id: str, media_id: str, media: CallMedia, *, keys: bool) -> None:
        """A leg without a connection of its own (RTP) ends when its channel does; one whose
        media carries no keys is handed the caller's from ARI."""
        from voicedock.pbx.asterisk.media.clocked_session import ClockedSession

        if isinstance(media, ClockedSession):
            self._clocked[media_id] = media
            if keys:
                self._keys[call_id] = media

    async def _bridge_when_ready(self, call_id: str, bridge: str, main: str, media: str) -> None:
        """Each leg into the bridge as soon as it is in Stasis (the caller's at once: it is
        there when the call is answered), both requests in flight together."""
        try:
            async with asyncio.timeout(_BRIDGE_DEADLINE):
                await all_of(
                    self._add_caller(call_id, bridge, main), self._add_in_stasis(bridge, media)
                )
        except (TimeoutError, PbxError):
            # Released meanwhile (e.g. Asterisk never connected a client-mode leg to us):
            # the call already failed for that reason; nothing is left to bridge.
            if bridge not in self._bridged:
                return
            raise
        if (bridged := self._bridged.get(bridge)) is not None:
            bridged.set()

    async def _add_caller(self, call_id: str, bridge: str, caller: str) -> None:
        try:
            await self._add_in_stasis(bridge, caller)
        finally:
            self._placed(call_id)

    async def _add_in_stasis(self, bridge: str, channel: str) -> None:
        entered = self._stasis_event(channel)
        try:
            await entered.wait()
        finally:
            if not entered.is_set() and self._in_stasis.get(channel) is entered:
                # Never came (it left before this wait began, or the bridging was given up):
                # no event will ever remove it.
                del self._in_stasis[channel]
        await add_channel(self._ari, bridge, channel)

    async def release(self, call_id: str) -> None:
        """Delete the call's media legs and bridges (Asterisk never does); errors are moot."""
        self._placed(call_id)
        legs = self._calls.get(call_id)
        if legs is None:
            return
        for channel in sorted(legs.media_channels):
            await self._delete(channel=channel)
            self._calls.detach_channel(channel)
        for bridge in sorted(legs.bridges):
            await self._delete(bridge=bridge)
            legs.bridges.discard(bridge)
            self._bridged.pop(bridge, None)

    async def _delete(self, *, channel: str | None = None, bridge: str | None = None) -> None:
        """Hang up a media leg and destroy a bridge at Asterisk; errors are moot."""
        if channel is not None:
            with contextlib.suppress(PbxError):
                await self._ari.hangup_channel(channel)
        if bridge is not None:
            with contextlib.suppress(PbxError):
                await destroy_bridge(self._ari, bridge)

    def _stasis_event(self, channel_id: str) -> asyncio.Event:
        return self._in_stasis.setdefault(channel_id, asyncio.Event())
