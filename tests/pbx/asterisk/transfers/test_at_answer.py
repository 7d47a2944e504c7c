"""A transfer asked the moment the call is answered, while its media is still being set up.

The engine's runner opens the call's media at the answer: the bridge and the media leg are
created, then the caller is added to the bridge. A transfer asked meanwhile must wait for that
``addChannel``: on the lab's Asterisk 22 a warm transfer's ``removeChannel`` sent before it was
refused ("422 Channel not in this bridge", ``res/ari/resource_bridges.c``) and the transfer
failed as ``warm-error``; a blind transfer's ``continue`` sent before it takes the caller out
of Stasis, and the media's ``addChannel`` is then refused, the media never bridged.

``BridgingAri`` answers as Asterisk does; the creation of the bridge and the media leg waits
until the test lets Asterisk answer it, which holds the window open.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest

from voicedock.config import AsteriskSettings
from voicedock.domain.ids import new_outbound_call_id
from voicedock.pbx.asterisk.ari.events import AriChannel, StasisStart
from voicedock.pbx.asterisk.ari.rest import HTTP_CONNECTS_AT_ONCE, AriHttpError
from voicedock.pbx.asterisk.media.legs import leg_id
from voicedock.pbx.asterisk.pbx import AsteriskPbx
from voicedock.pbx.asterisk.server_info import AsteriskServerInfo
from voicedock.pbx.base import PbxEvent, PbxEventKind, TransferTarget

pytestmark = pytest.mark.unit

CALL = new_outbound_call_id()
BRIDGE = leg_id(CALL, "bridge")
MEDIA = leg_id(CALL, "media")
AGENT = leg_id(CALL, "agent")


class BridgingAri:
    """ARI as Asterisk 22 answers what a call's media and its transfers ask: a bridge exists
    once its creation is received (the answer may come later); ``addChannel`` of a channel not
    in Stasis and ``removeChannel`` of one not in the bridge are 422; a channel continued into
    the dialplan leaves Stasis and its bridge. ``answer_creates`` lets Asterisk answer the
    creation of the bridge and of the media leg (held until then)."""

    registered = True
    connect_count = 1

    def __init__(self) -> None:
        self.answer_creates = asyncio.Event()
        self.bridges: dict[str, set[str]] = {}
        self.in_stasis: set[str] = set()
        self.sent: list[str] = []  # "METHOD path[ channel]" as received
        self.refused: list[str] = []
        self.on_event: Callable[[Any], Any] | None = None
        self.on_arrival: Callable[[Any], None] | None = None
        self.dialing = asyncio.Semaphore(HTTP_CONNECTS_AT_ONCE)  # AriClient.dialing

    async def start(
        self, on_event: Any, *, on_connected: Any = None, on_arrival: Any = None, **_: Any
    ) -> None:
        self.on_event, self.on_arrival = on_event, on_arrival
        if on_connected is not None:
            await on_connected()

    async def aclose(self) -> None:
        return None

    async def wait_registered(self, within: float = 5.0) -> None:
        return None

    async def server_info(self) -> AsteriskServerInfo:
        return AsteriskServerInfo("22.6.0", None)

    async def startup_time(self) -> str:
        return "2026-11-25T09:00:00.000+0000"

    def events_url(self) -> str:
        return "ws://127.0.0.1:8088/ari/events?app=voicedock"

    async def list_channels(self) -> list[AriChannel]:
        return [AriChannel(id=channel) for channel in sorted(self.in_stasis)]

    async def hangup_channel(self, channel_id: str, reason: str = "normal") -> bool:
        self.sent.append(f"DELETE /channels/{channel_id}")
        return True

    async def originate(self, *, channel_id: str, **_: Any) -> None:
        self.sent.append(f"POST /channels {channel_id}")

    async def continue_in_dialplan(
        self, channel_id: str, context: str, extension: str, priority: int = 1
    ) -> None:
        self.sent.append(f"POST /channels/{channel_id}/continue")
        self.in_stasis.discard(channel_id)  # into the dialplan: out of Stasis and its bridge
        for members in self.bridges.values():
            members.discard(channel_id)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Any:
        params = dict(params or {})
        channel = params.get("channel", "")
        self.sent.append(f"{method} {path} {channel}".rstrip())
        if (method, path) == ("POST", "/bridges"):
            self.bridges[params["bridgeId"]] = set()
            await self.answer_creates.wait()
            return {"id": params["bridgeId"]}
        if (method, path) == ("POST", "/channels/externalMedia"):
            await self.answer_creates.wait()
            media = params["channelId"]
            self.in_stasis.add(media)
            assert self.on_arrival is not None
            self.on_arrival(StasisStart(AriChannel(media), args=("media", CALL)))
            return {"id": media, "channelvars": {"MEDIA_WEBSOCKET_CONNECTION_ID": "c1"}}
        if path.endswith(("/addChannel", "/removeChannel")):
            bridge = path.split("/")[2]
            if bridge not in self.bridges:
                self._refuse(method, path, 404, "Bridge not found")
            if path.endswith("/addChannel"):
                if channel not in self.in_stasis:
                    self._refuse(method, path, 422, "Channel not in Stasis application")
                for members in self.bridges.values():
                    members.discard(channel)
                self.bridges[bridge].add(channel)
            elif channel not in self.bridges[bridge]:
                self._refuse(method, path, 422, "Channel not in this bridge")
            else:
                self.bridges[bridge].discard(channel)
        return None

    def _refuse(self, method: str, path: str, status: int, message: str) -> None:
        self.refused.append(f"{method} {path}: {status} {message}")
        raise AriHttpError(method, path, status, message)

    async def answer(self, call_id: str) -> None:
        """The callee answered: the call's channel enters our Stasis app."""
        self.in_stasis.add(call_id)
        event = StasisStart(AriChannel(call_id), args=("outbound", call_id))
        assert self.on_arrival is not None
        assert self.on_event is not None
        self.on_arrival(event)
        await self.on_event(event)


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.005)


async def open_media(pbx: AsteriskPbx) -> None:
    """What the runner's media does first: the bridge and the media leg, asked together."""
    media, leg = pbx._media, leg_id(CALL, "media")
    prepared = await media.transports.prepare(call_id=CALL, leg=leg, media_format="ulaw")
    await media.open(CALL, prepared, media_id=leg)


@pytest.fixture
async def answered() -> AsyncIterator[tuple[AsteriskPbx, BridgingAri, list[PbxEvent]]]:
    """An answered call whose media is being set up, as the runner does at the answer: the
    bridge and the media leg are asked for, Asterisk has not answered yet."""
    ari = BridgingAri()
    pbx = AsteriskPbx(AsteriskSettings(), ari=ari)  # type: ignore[arg-type]
    events: list[PbxEvent] = []

    async def sink(event: PbxEvent) -> None:
        events.append(event)

    await pbx.start(sink)
    media: asyncio.Task[Any] | None = None
    try:
        await ari.answer(CALL)
        await until(lambda: [e.kind for e in events] == [PbxEventKind.ANSWERED])
        media = asyncio.create_task(open_media(pbx))
        await until(lambda: "POST /channels/externalMedia" in ari.sent)
        yield pbx, ari, events
    finally:
        ari.answer_creates.set()
        if media is not None:
            await asyncio.gather(media, return_exceptions=True)
        await pbx.aclose()


async def asked_meanwhile(ari: BridgingAri, transfer: asyncio.Task[None]) -> None:
    """The transfer was asked while the creation was in flight; then Asterisk answers it."""
    await asyncio.wait({transfer}, timeout=0.2)  # its chance to act on the caller too early
    ari.answer_creates.set()
    async with asyncio.timeout(5):
        await transfer


async def test_a_warm_transfer_at_the_answer_takes_the_caller_from_the_bridge_once_in_it(
    answered: tuple[AsteriskPbx, BridgingAri, list[PbxEvent]],
) -> None:
    pbx, ari, events = answered
    warm = TransferTarget("sales", internal=True, mode="warm")
    await asked_meanwhile(ari, asyncio.create_task(pbx.transfer(CALL, warm)))
    await until(lambda: f"POST /channels {AGENT}" in ari.sent or bool(events[1:]))
    assert ari.refused == []
    assert [e.kind for e in events] == [PbxEventKind.ANSWERED]  # no TRANSFER_FAILED
    add, remove = (f"POST /bridges/{BRIDGE}/{op} {CALL}" for op in ("addChannel", "removeChannel"))
    assert ari.sent.index(add) < ari.sent.index(remove) < ari.sent.index(f"POST /channels {AGENT}")


async def test_a_blind_transfer_at_the_answer_leaves_the_media_bridged_behind_it(
    answered: tuple[AsteriskPbx, BridgingAri, list[PbxEvent]],
) -> None:
    pbx, ari, _ = answered
    blind = TransferTarget("sales", internal=True)
    await asked_meanwhile(ari, asyncio.create_task(pbx.transfer(CALL, blind)))
    await until(lambda: f"POST /bridges/{BRIDGE}/addChannel {MEDIA}" in ari.sent)
    assert ari.refused == []  # the caller's addChannel came before it left Stasis
    continued = ari.sent.index(f"POST /channels/{CALL}/continue")
    assert ari.sent.index(f"POST /bridges/{BRIDGE}/addChannel {CALL}") < continued
