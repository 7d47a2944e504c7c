"""The media leg after the answer, set up without waiting on anything it does not need.

The bridge and the externalMedia channel are created together; the caller goes into the bridge
at once (its channel is in Stasis when the call is answered) and the media leg the moment its
StasisStart arrives, which the ARI client tells as it reads the event, not once its dispatcher
(busy storing the other answers of a campaign) reaches it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import aiohttp
import pytest

from voicedock.aio import Supervisor
from voicedock.config import AsteriskSettings
from voicedock.domain.json import JsonObject
from voicedock.errors import PbxError
from voicedock.pbx.asterisk.ari.event_stream import AriEventStream
from voicedock.pbx.asterisk.ari.events import AriEvent, StasisStart
from voicedock.pbx.asterisk.ari.rest import HTTP_CONNECTS_AT_ONCE, AriHttpError, AriRest
from voicedock.pbx.asterisk.media import legs as asterisk_legs
from voicedock.pbx.asterisk.media.legs import AsteriskMedia
from voicedock.pbx.asterisk.media.transports import MediaTransports
from voicedock.pbx.legs import CallRegistry

pytestmark = pytest.mark.unit

CALL = "call-outbound-abc123"
MEDIA = f"{CALL}-media"
BRIDGE = f"{CALL}-bridge"


class HeldAri:
    """ARI requests as they are sent; creating the bridge or the media leg waits until both
    were sent (in flight together) or until the test releases them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.both_creates = asyncio.Event()
        self.fail: dict[str, AriHttpError] = {}
        self.answer_creates: asyncio.Event | None = None  # set: Asterisk answers them
        self.dialing = asyncio.Semaphore(HTTP_CONNECTS_AT_ONCE)  # AriClient.dialing

    def events_url(self) -> str:
        return "ws://127.0.0.1:8088/ari/events?app=voicedock"

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.sent.append((method, path if not kwargs.get("params") else _with(path, kwargs)))
        if path in ("/bridges", "/channels/externalMedia"):
            creates = {p for _, p in self.sent if p in ("/bridges", "/channels/externalMedia")}
            if len(creates) == 2:
                self.both_creates.set()
            async with asyncio.timeout(2):  # a sequential caller never gets past this
                await self.both_creates.wait()
                if self.answer_creates is not None:
                    await self.answer_creates.wait()
        if path in self.fail:
            raise self.fail[path]
        if path == "/channels/externalMedia":
            return {"id": MEDIA, "channelvars": {"MEDIA_WEBSOCKET_CONNECTION_ID": "c1"}}
        if path == "/bridges":
            return {"id": BRIDGE}
        return None

    async def hangup_channel(self, channel_id: str, reason: str = "normal") -> bool:
        self.sent.append(("DELETE", f"/channels/{channel_id}"))
        return True

    @property
    def creates_sent(self) -> bool:
        return self.both_creates.is_set()


def _with(path: str, kwargs: dict[str, Any]) -> str:
    channel = kwargs["params"].get("channel")
    return f"{path}?channel={channel}" if channel else path


async def media_of(ari: HeldAri) -> tuple[AsteriskMedia, CallRegistry, Supervisor]:
    calls = CallRegistry()
    calls.add(CALL, CALL, "outbound")
    tasks = Supervisor("test", __import__("logging").getLogger("test"))
    await tasks.start()

    def spawn(coro: Coroutine[Any, Any, Any]) -> None:
        tasks.spawn(coro)

    transports = MediaTransports(AsteriskSettings(), ari)  # type: ignore[arg-type]
    media = AsteriskMedia(ari, "voicedock", calls, spawn, transports)  # type: ignore[arg-type]
    return media, calls, tasks


async def open_leg(media: AsteriskMedia) -> JsonObject:
    """The call's bridge and a server-mode websocket leg: Asterisk's variables of the leg."""
    leg = await media.transports.prepare(call_id=CALL, leg=MEDIA, media_format="ulaw")
    return await media.open(CALL, leg, media_id=MEDIA)


async def test_the_bridge_and_the_media_leg_are_created_together_the_caller_bridged_at_once() -> (
    None
):
    ari = HeldAri()
    media, _, tasks = await media_of(ari)
    try:
        media.entered_stasis(CALL)  # answered: the caller's channel is in our Stasis app
        channel_vars = await open_leg(media)
        assert channel_vars["MEDIA_WEBSOCKET_CONNECTION_ID"] == "c1"
        add_caller = ("POST", f"/bridges/{BRIDGE}/addChannel?channel={CALL}")
        add_media = ("POST", f"/bridges/{BRIDGE}/addChannel?channel={MEDIA}")
        async with asyncio.timeout(2):
            while add_caller not in ari.sent:  # before the media leg is even in Stasis
                await asyncio.sleep(0.001)
        assert add_media not in ari.sent
        media.entered_stasis(MEDIA)  # its StasisStart
        async with asyncio.timeout(2):
            while add_media not in ari.sent:
                await asyncio.sleep(0.001)
            await media._bridged[BRIDGE].wait()
    finally:
        await tasks.aclose()


async def test_a_failed_creation_leaves_nothing_behind() -> None:
    ari = HeldAri()
    ari.fail["/bridges"] = AriHttpError("POST", "/bridges", 500, "refused")
    media, calls, tasks = await media_of(ari)
    try:
        with pytest.raises(PbxError):  # itself, not an exception group
            await open_leg(media)
        async with asyncio.timeout(1):  # nothing will bridge the caller: a transfer goes ahead
            await media.settled(CALL)
        await media.release(CALL)
        assert ("DELETE", f"/channels/{MEDIA}") in ari.sent  # the leg that was created goes
        legs = calls.get(CALL)
        assert legs is not None
        assert not legs.bridges
        assert not legs.media_channels
    finally:
        await tasks.aclose()


async def test_settled_returns_once_the_caller_is_bridged() -> None:
    """What a transfer asked at the answer waits for (``AsteriskPbx.transfer``)."""
    ari = HeldAri()
    media, _, tasks = await media_of(ari)
    add_caller = ("POST", f"/bridges/{BRIDGE}/addChannel?channel={CALL}")
    try:
        await media.settled(CALL)  # no set-up under way: at once
        media.entered_stasis(CALL)
        opening = asyncio.create_task(open_leg(media))
        await asyncio.sleep(0)  # both creations sent, not answered yet

        async def settled() -> bool:
            await media.settled(CALL)
            return add_caller in ari.sent

        async with asyncio.timeout(2):
            assert await settled()
            await opening
    finally:
        await tasks.aclose()


async def test_media_released_while_it_is_created_leaves_nothing_behind() -> None:
    """The caller hangs up while the bridge and the media leg are being created: the hang-up's
    release asks Asterisk to delete them before it made them, so they are deleted once made,
    and nothing is left waiting for a bridging that never comes (a node serves calls for days:
    an entry per such call would never go)."""
    ari = HeldAri()
    ari.answer_creates = asyncio.Event()
    media, calls, tasks = await media_of(ari)
    try:
        media.entered_stasis(CALL)  # answered
        opening = asyncio.create_task(open_leg(media))
        async with asyncio.timeout(2):
            while not ari.creates_sent:
                await asyncio.sleep(0.001)
        media.left_stasis(CALL)  # the caller's ChannelDestroyed
        await media.release(CALL)  # what the hang-up does: the legs deleted, the call let go
        calls.forget(CALL)
        ari.answer_creates.set()  # Asterisk made them after all
        with pytest.raises(PbxError):
            await opening
        deletes = [("DELETE", f"/channels/{MEDIA}"), ("DELETE", f"/bridges/{BRIDGE}")]
        assert ari.sent[-4:] == deletes * 2  # the release's, then once they were made
        await asyncio.sleep(0.01)
        assert media._bridged == {}
        assert media._in_stasis == {}
    finally:
        await tasks.aclose()


async def test_a_bridging_given_up_waits_for_no_channel_any_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The caller left before the bridging began: once it is given up, no entry waits for the
    caller's or the media leg's StasisStart (no event would ever remove it)."""
    monkeypatch.setattr(asterisk_legs, "_BRIDGE_DEADLINE", 0.05)
    ari = HeldAri()
    media, _, tasks = await media_of(ari)
    try:
        await open_leg(media)
        await asyncio.sleep(0.2)  # the deadline passed
        await media.release(CALL)
        assert media._in_stasis == {}
        assert media._bridged == {}
    finally:
        await tasks.aclose()


class FrameSocket:
    """A websocket that yields the given ARI event frames (``_pump``'s side of it)."""

    def __init__(self, frames: list[dict[str, Any]]) -> None:
        self._frames = frames
        self.close_code = 1000

    def __aiter__(self) -> AsyncIterator[aiohttp.WSMessage]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[aiohttp.WSMessage]:
        for frame in self._frames:
            yield aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, json.dumps(frame), None)


async def test_the_ari_client_tells_each_event_as_it_arrives_before_its_queue() -> None:
    seen: list[tuple[str, str]] = []

    async def slow_handler(event: AriEvent) -> None:  # a campaign's answers, each stored
        seen.append(("dispatched", type(event).__name__))
        await asyncio.sleep(10)

    def arrival(event: AriEvent) -> None:
        seen.append(("arrived", type(event).__name__))

    settings = AsteriskSettings()
    rest = AriRest(settings)
    client = AriEventStream(settings, rest)
    client._on_event, client._on_arrival = slow_handler, arrival
    channel = {"id": MEDIA, "name": "WebSocket/x", "state": "Up"}
    frames = [
        {"type": "StasisStart", "channel": {"id": CALL, "state": "Up"}, "args": ["outbound"]},
        {"type": "StasisStart", "channel": channel, "args": ["media", CALL]},
    ]
    await client._pump(FrameSocket(frames))  # type: ignore[arg-type]
    assert seen == [("arrived", "StasisStart"), ("arrived", "StasisStart")]
    assert client._queue.qsize() == 2  # the dispatcher still gets both, in order
    first = client._queue.get_nowait()
    assert isinstance(first, StasisStart)
    assert first.channel.id == CALL
    await client.aclose()
    await rest.aclose()
