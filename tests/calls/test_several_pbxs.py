"""The call engine over several PBX servers (``pbx/several``): each call is stored with the
server of its trunk (or the one it came in on), a restart of one server fails only that
server's calls, a previous run's calls are hung up on the server stored with them, and a lost
media leg is judged by the health of the call's own server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from fakes.calls import call_finished, calls_of, place_outbound
from fakes.memory_store import MemoryStore
from fakes.pbx import FakePbx, MediaFakePbx
from fakes.requests import outbound_request
from fakes.world import (
    ACME,
    ACME_NUMBERS,
    DESTINATION,
    SUPPORT_ID,
    make_settings,
    number_id,
    org_id,
)
from media.fake_asterisk import FakeAsterisk
from pipeline.fakes import FakeLlm, FakeStt, FakeTts
from voicedock.calls.engine import CallEngine
from voicedock.calls.live.conversation import SpeechProviders
from voicedock.calls.recovery import CallRecovery
from voicedock.calls.runner import CallRunner
from voicedock.config import TrunkSettings
from voicedock.domain.records import CallStatus
from voicedock.organizations.config_mirror import mirror_config
from voicedock.pbx.base import InboundCall, InboundHandler, PbxEventKind
from voicedock.pbx.several import SeveralPbxs

pytestmark = pytest.mark.unit

ACME_ID = org_id(ACME)


class Server(FakePbx):
    def __init__(self) -> None:
        super().__init__()
        self.inbound: InboundHandler | None = None
        self.leftovers: list[dict[str, str | None]] = []

    def set_inbound_handler(self, handler: InboundHandler) -> None:
        self.inbound = handler

    async def hang_up_leftovers(self, calls: Mapping[str, str | None]) -> set[str]:
        self.leftovers.append(dict(calls))
        return set()


@pytest.fixture
async def world() -> tuple[CallEngine, MemoryStore, Server, Server]:
    settings = make_settings()
    settings.trunks = [
        TrunkSettings(name="carrier", endpoint="carrier-ep", pbx="a"),
        TrunkSettings(name="carrier-b", endpoint="carrier-ep", pbx="b"),
    ]
    settings.numbers[1].trunk = "carrier-b"
    store = MemoryStore()
    await mirror_config(store, settings)
    a, b = Server(), Server()
    pbx = SeveralPbxs({"a": a, "b": b})
    engine, runner = calls_of(store, pbx, settings)
    pbx.set_inbound_handler(engine.inbound.accept)
    # The service's event path; not started, it serves no conversation (nor needs closing).
    await pbx.start(runner.events.handle_pbx_event)
    return engine, store, a, b


async def place(engine: CallEngine, number: str) -> str:
    body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID, "number_id": number_id(number)}
    result = await place_outbound(engine, ACME_ID, outbound_request(body))
    call_id = result.body["call_id"]
    assert isinstance(call_id, str)
    return call_id


async def test_a_call_lives_on_its_trunks_server(
    world: tuple[CallEngine, MemoryStore, Server, Server],
) -> None:
    engine, store, a, b = world
    on_a = await place(engine, ACME_NUMBERS[0])
    on_b = await place(engine, ACME_NUMBERS[1])
    assert [(r.call_id, r.pbx, r.trunk_endpoint) for r in b.originated] == [
        (on_b, "b", "carrier-ep")
    ]
    assert [r.call_id for r in a.originated] == [on_a]
    stored = [await store.get_call(ACME_ID, call_id) for call_id in (on_a, on_b)]
    assert [call.pbx for call in stored if call is not None] == ["a", "b"]
    trunk = await store.get_trunk("carrier-b")
    assert trunk is not None
    assert trunk.pbx == "b"


async def test_an_inbound_call_is_stored_with_the_server_it_came_in_on(
    world: tuple[CallEngine, MemoryStore, Server, Server],
) -> None:
    _, store, _, b = world
    assert b.inbound is not None
    call_id = await b.inbound(InboundCall("1790.7", "+31623731537", ACME_NUMBERS[0]))
    assert call_id is not None
    call = await store.get_call(None, call_id)
    assert call is not None
    assert call.pbx == "b"


async def test_a_restart_of_one_server_fails_only_its_calls(
    world: tuple[CallEngine, MemoryStore, Server, Server],
) -> None:
    engine, store, a, b = world
    on_a = await place(engine, ACME_NUMBERS[0])
    on_b = await place(engine, ACME_NUMBERS[1])
    await a.answer(on_a)
    await b.answer(on_b)
    await b.emit("", PbxEventKind.PBX_RESTARTED)
    lost = await store.get_call(ACME_ID, on_b)
    kept = await store.get_call(ACME_ID, on_a)
    assert lost is not None
    assert kept is not None
    assert (lost.status, lost.error) == (CallStatus.FAILED, "pbx-restart")
    assert kept.status is CallStatus.IN_PROGRESS


async def test_a_previous_runs_calls_are_hung_up_on_their_own_server(
    world: tuple[CallEngine, MemoryStore, Server, Server],
) -> None:
    engine, store, _, _ = world
    on_b = await place(engine, ACME_NUMBERS[1])
    call = await store.get_call(ACME_ID, on_b)
    assert call is not None
    # A new run: its router knows nothing of the call but what the store says.
    a, b = Server(), Server()
    fresh = SeveralPbxs({"a": a, "b": b})
    recovery = await CallRecovery(store, fresh, engine).end_lost([call], deadline=2.0)
    assert recovery.ended == [on_b]
    assert b.leftovers == [{on_b: None}]
    assert a.leftovers == []


@dataclass
class Live:
    fake: FakeAsterisk
    a: MediaFakePbx
    b: MediaFakePbx
    engine: CallEngine
    runner: CallRunner
    store: MemoryStore


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    """Servers a and b carrying media (one fake chan_websocket endpoint), a runner serving the
    calls' conversations."""
    settings = make_settings()
    settings.trunks = [
        TrunkSettings(name="carrier", endpoint="carrier-ep", pbx="a"),
        TrunkSettings(name="carrier-b", endpoint="carrier-ep", pbx="b"),
    ]
    settings.numbers[1].trunk = "carrier-b"
    store = MemoryStore()
    await mirror_config(store, settings)
    async with FakeAsterisk(send_audio=False) as fake:
        a, b = MediaFakePbx(fake), MediaFakePbx(fake)
        pbx = SeveralPbxs({"a": a, "b": b})

        async def providers(config: Mapping[str, Any]) -> SpeechProviders:
            return SpeechProviders(FakeStt(), FakeLlm(), FakeTts(8000, ms_per_char=10))

        engine, runner = calls_of(store, pbx, settings, providers=providers, close_timeout=5)
        async with runner:
            await pbx.start(runner.events.handle_pbx_event)
            yield Live(fake, a, b, engine, runner, store)


async def talking(live: Live, number: str, server: MediaFakePbx) -> str:
    call_id = await place(live.engine, number)
    await server.answer(call_id)
    async with asyncio.timeout(5):
        while (running := live.runner.served.get(call_id)) is None or running.live is None:
            await asyncio.sleep(0.01)
    return call_id


async def test_media_lost_with_its_server_down_waits_for_that_servers_word(live: Live) -> None:
    """The call's server is down (the other is up): its media loss is the server's crash, so
    no hang-up goes out and the restart it reports once back ends the call ``pbx-restart``."""
    call_id = await talking(live, ACME_NUMBERS[1], live.b)
    live.b.connected = False
    await live.fake.channel().ws.close()  # the media goes with the server
    await asyncio.sleep(0.5)
    assert live.b.hangups == []  # waiting for b's word, not hanging up as a media loss
    live.b.connected = True
    await live.b.emit("", PbxEventKind.PBX_RESTARTED)
    async with asyncio.timeout(5):
        await call_finished(live.runner, call_id)
    call = await live.store.get_call(None, call_id)
    assert call is not None
    assert (call.status, call.error) == (CallStatus.FAILED, "pbx-restart")
    assert live.b.hangups == []


async def test_media_lost_on_a_server_that_is_up_hangs_up_at_once_while_another_is_down(
    live: Live,
) -> None:
    call_id = await talking(live, ACME_NUMBERS[0], live.a)
    live.b.connected = False  # another server's outage is not this call's
    await live.fake.channel().ws.close()
    async with asyncio.timeout(3):
        await call_finished(live.runner, call_id)
    call = await live.store.get_call(None, call_id)
    assert call is not None
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "media-lost")
    assert [c for c, _ in live.a.hangups] == [call_id]
