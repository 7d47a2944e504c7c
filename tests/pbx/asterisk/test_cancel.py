"""Hanging up an AMI-originated call whose channel Asterisk has not created yet: the hang-up
must still reach the channel once it exists (the Originate runs in a thread of its own)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from voicedock.config import AsteriskSettings
from voicedock.domain.ids import new_outbound_call_id
from voicedock.pbx.asterisk.ami.messages import AmiOriginateResponse
from voicedock.pbx.asterisk.ari.events import AriChannel, ChannelStateChange, StasisStart
from voicedock.pbx.asterisk.pbx import AsteriskPbx
from voicedock.pbx.asterisk.server_info import AsteriskServerInfo
from voicedock.pbx.base import OriginateRequest, PbxEvent, PbxEventKind

pytestmark = pytest.mark.unit

CALL = new_outbound_call_id()


class StubAri:
    """The channel ``CALL`` exists once ``created`` is set; DELETE before that is a 404."""

    def __init__(self) -> None:
        self.created = False
        self.deleted: list[str] = []
        self.attempts = 0
        self.on_event: Callable[[Any], Awaitable[None]] | None = None

    registered = True
    connect_count = 1

    async def start(
        self, on_event: Any, *, on_connected: Any = None, on_arrival: Any = None, **_: Any
    ) -> None:
        self.on_event = on_event
        if on_connected is not None:
            await on_connected()  # reconcile: originates wait for it

    async def aclose(self) -> None:
        return None

    async def wait_registered(self, within: float = 5.0) -> None:
        return None

    async def server_info(self) -> AsteriskServerInfo:
        return AsteriskServerInfo("22.6.0", None)

    async def startup_time(self) -> str:
        return "2026-11-23T09:00:00.000+0000"

    async def list_channels(self) -> list[AriChannel]:
        return [AriChannel(id=CALL)] if self.created and CALL not in self.deleted else []

    async def hangup_channel(self, channel_id: str, reason: str = "normal") -> bool:
        self.attempts += 1
        if not self.created or channel_id in self.deleted:
            return False
        self.deleted.append(channel_id)
        return True


class StubAmi:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    connected = True
    connect_count = 1

    async def start(self, on_event: Any, *, on_connected: Any = None) -> None:
        if on_connected is not None:
            await on_connected()

    async def aclose(self) -> None:
        return None

    async def originate(self, headers: dict[str, Any]) -> asyncio.Future[AmiOriginateResponse]:
        self.sent.append(headers)
        return asyncio.get_running_loop().create_future()  # "queued"; the outcome comes later


@pytest.fixture
async def ami_pbx() -> AsyncIterator[tuple[AsteriskPbx, StubAri, list[PbxEvent]]]:
    ari = StubAri()
    settings = AsteriskSettings(originate_via="ami")
    pbx = AsteriskPbx(settings, ari=ari, ami=StubAmi())  # type: ignore[arg-type]
    events: list[PbxEvent] = []

    async def sink(event: PbxEvent) -> None:
        events.append(event)

    await pbx.start(sink)
    await pbx.originate(
        OriginateRequest(CALL, "+31612345678", "+31850835037", "carrier", timeout_seconds=5)
    )
    try:
        yield pbx, ari, events
    finally:
        await pbx.aclose()


async def test_hangup_before_the_channel_exists_reaches_it_once_created(
    ami_pbx: tuple[AsteriskPbx, StubAri, list[PbxEvent]],
) -> None:
    pbx, ari, _ = ami_pbx
    await pbx.hangup(CALL)
    assert ari.deleted == []  # Asterisk has not dialled yet
    await asyncio.sleep(0.25)
    ari.created = True  # the Originate thread creates the channel
    async with asyncio.timeout(2):
        while not ari.deleted:
            await asyncio.sleep(0.02)
    assert ari.deleted == [CALL]


async def test_the_first_event_of_the_unwanted_channel_hangs_it_up(
    ami_pbx: tuple[AsteriskPbx, StubAri, list[PbxEvent]],
) -> None:
    pbx, ari, events = ami_pbx
    await pbx.hangup(CALL)
    ari.created = True
    assert ari.on_event is not None
    await ari.on_event(ChannelStateChange(AriChannel(CALL, state="Ringing")))
    assert ari.deleted == [CALL]
    assert [e.kind for e in events] == []  # no RINGING reported for a call we hung up


async def test_an_unwanted_call_that_is_answered_is_hung_up_not_reported(
    ami_pbx: tuple[AsteriskPbx, StubAri, list[PbxEvent]],
) -> None:
    pbx, ari, events = ami_pbx
    ari.created = True
    ari.deleted.append(CALL)  # let the chase's DELETEs miss, as if the channel was not there
    await pbx.hangup(CALL)
    ari.deleted.clear()
    assert ari.on_event is not None
    await ari.on_event(StasisStart(AriChannel(CALL), args=("outbound", CALL)))
    assert ari.deleted == [CALL]
    assert PbxEventKind.ANSWERED not in [e.kind for e in events]


async def test_a_hangup_that_found_the_channel_does_not_chase(
    ami_pbx: tuple[AsteriskPbx, StubAri, list[PbxEvent]],
) -> None:
    pbx, ari, _ = ami_pbx
    ari.created = True
    await pbx.hangup(CALL)
    assert ari.deleted == [CALL]
    await asyncio.sleep(0.3)
    assert ari.attempts == 1
