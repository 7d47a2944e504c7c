"""``SeveralPbxs`` over fake servers: requests go to the trunk's server, each call's commands to
the server carrying it, and one server's restart or outage touches only its own calls."""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping

import pytest

from fakes.pbx import FakePbx
from voicedock import logs
from voicedock.errors import PbxError, PbxUnavailable
from voicedock.pbx.base import (
    InboundCall,
    LeftoverPbx,
    OriginateRequest,
    PbxEvent,
    PbxEventKind,
    ResumablePbx,
    RoutingPbx,
    TransferTarget,
)
from voicedock.pbx.several import SeveralPbxs

pytestmark = pytest.mark.unit


class Server(FakePbx):
    """A fake server that can also adopt calls, clear leftovers and take inbound calls."""

    def __init__(self) -> None:
        super().__init__()
        self.adoptable: set[str] = set()
        self.leftovers: list[dict[str, str | None]] = []
        self.down = False
        self.inbound: object = None

    def set_inbound_handler(self, handler: object) -> None:
        self.inbound = handler

    async def live_call_ids(self) -> set[str]:
        if self.down:
            raise PbxUnavailable("down")
        return await super().live_call_ids()

    async def hangup(self, call_id: str, reason: str = "normal") -> None:
        if self.down:
            raise PbxUnavailable("down")
        await super().hangup(call_id, reason)

    async def adopt_call(self, call_id: str, remote_ref: str | None) -> bool:
        if self.down:
            raise PbxUnavailable("down")
        return call_id in self.adoptable

    async def hang_up_leftovers(self, calls: Mapping[str, str | None]) -> set[str]:
        if self.down:
            raise PbxUnavailable("down")
        self.leftovers.append(dict(calls))
        return set()


def request(call_id: str, pbx: str = "") -> OriginateRequest:
    return OriginateRequest(call_id, "+31612345678", "+31850835037", "carrier", pbx=pbx)


@pytest.fixture
async def world() -> tuple[SeveralPbxs, Server, Server, list[PbxEvent]]:
    a, b = Server(), Server()
    pbx = SeveralPbxs({"a": a, "b": b})
    events: list[PbxEvent] = []

    async def sink(event: PbxEvent) -> None:
        events.append(event)

    await pbx.start(sink)
    return pbx, a, b, events


async def test_originate_goes_to_the_trunks_server_and_commands_follow_the_call(
    world: tuple[SeveralPbxs, Server, Server, list[PbxEvent]],
) -> None:
    pbx, a, b, _ = world
    assert isinstance(pbx, RoutingPbx)
    assert isinstance(pbx, LeftoverPbx)
    assert isinstance(pbx, ResumablePbx)
    await pbx.originate(request("call-1", "b"))
    await pbx.originate(request("call-2"))  # no server named: the first
    assert [r.call_id for r in b.originated] == ["call-1"]
    assert [r.call_id for r in a.originated] == ["call-2"]
    await pbx.hangup("call-1")
    await pbx.transfer("call-2", TransferTarget("sales", internal=True))
    assert b.hangups == [("call-1", "normal")]
    assert a.hangups == []
    assert [call_id for call_id, _ in a.transfers] == ["call-2"]
    assert await pbx.live_call_ids() == {"call-1", "call-2"}
    with pytest.raises(PbxUnavailable, match="'c' is not configured"):
        await pbx.originate(request("call-3", "c"))
    b.fail_next_originate = PbxUnavailable("not ready")
    with pytest.raises(PbxUnavailable):
        await pbx.originate(request("call-4", "b"))
    assert pbx.server_of("call-4") is None  # not placed: nothing kept of it


async def test_a_call_no_server_is_known_for_is_hung_up_everywhere(
    world: tuple[SeveralPbxs, Server, Server, list[PbxEvent]],
) -> None:
    pbx, a, b, _ = world
    b.down = True
    await pbx.hangup("call-x")  # b cannot be asked, a could: done
    assert a.hangups == [("call-x", "normal")]
    a.down = True
    with pytest.raises(PbxUnavailable):
        await pbx.hangup("call-x")
    with pytest.raises(PbxError, match="none of the configured PBXs"):
        await pbx.transfer("call-x", TransferTarget("sales", internal=True))


async def test_a_restart_of_one_server_fails_only_its_calls(
    world: tuple[SeveralPbxs, Server, Server, list[PbxEvent]],
) -> None:
    pbx, a, b, events = world
    for call_id, server in (("call-a", "a"), ("call-b1", "b"), ("call-b2", "b")):
        await pbx.originate(request(call_id, server))
    await b.emit("", PbxEventKind.PBX_RESTARTED)
    assert [(e.call_id, e.kind) for e in events] == [
        ("call-b1", PbxEventKind.PBX_RESTARTED),
        ("call-b2", PbxEventKind.PBX_RESTARTED),
    ]
    assert pbx.server_of("call-b1") is None  # gone with the restart
    assert pbx.server_of("call-a") == "a"
    await a.hang_up_remote("call-a")
    assert events[-1] == PbxEvent("call-a", PbxEventKind.HANGUP, 16)
    assert pbx.server_of("call-a") is None


async def test_one_server_down_leaves_the_others_calls_and_health(
    world: tuple[SeveralPbxs, Server, Server, list[PbxEvent]],
) -> None:
    pbx, a, b, _ = world
    await pbx.originate(request("call-a", "a"))
    await pbx.originate(request("call-b", "b"))
    b.down = True
    b.connected = False
    assert await pbx.live_call_ids() == {"call-a"}
    health = pbx.health()
    assert health.links == {"a.pbx": True, "b.pbx": False}
    assert set(health.servers) == {"a", "b"}
    assert health.can_place_calls  # on a
    assert not health.all_up
    assert pbx.call_health("call-a").can_place_calls
    assert not pbx.call_health("call-b").can_place_calls
    a.down = True
    with pytest.raises(PbxUnavailable):
        await pbx.live_call_ids()


async def test_inbound_calls_are_marked_with_their_server(
    world: tuple[SeveralPbxs, Server, Server, list[PbxEvent]],
) -> None:
    pbx, _, b, _ = world
    seen: list[InboundCall] = []

    async def accept(call: InboundCall) -> str | None:
        seen.append(call)
        return "call-in" if call.called == "+31850835037" else None

    pbx.set_inbound_handler(accept)
    handler = b.inbound
    assert callable(handler)
    assert await handler(InboundCall("1790.1", "+31612345678", "+31850835037")) == "call-in"
    assert await handler(InboundCall("1790.2", "+31612345678", "+31850835099")) is None
    assert [call.pbx for call in seen] == ["b", "b"]
    assert pbx.server_of("call-in") == "b"
    await pbx.hangup("call-in")
    assert b.hangups == [("call-in", "normal")]


async def test_a_previous_runs_calls_are_adopted_and_cleared_where_they_live(
    world: tuple[SeveralPbxs, Server, Server, list[PbxEvent]],
) -> None:
    pbx, a, b, _ = world
    a.adoptable = {"call-1"}
    b.adoptable = {"call-1", "call-2"}
    pbx.locate("call-1", "b")
    assert await pbx.adopt_call("call-1", None)
    assert pbx.server_of("call-1") == "b"
    assert await pbx.adopt_call("call-2", None)  # not located: the server that has it
    assert pbx.server_of("call-2") == "b"
    pbx.locate("call-3", "a")
    pbx.locate("call-4", "gone")  # a server no longer configured: not known
    assert pbx.server_of("call-4") is None
    b.down = True
    left = await pbx.hang_up_leftovers({"call-3": "1790.3", "call-4": None})
    assert a.leftovers == [{"call-3": "1790.3", "call-4": None}]
    assert left == {"call-4"}  # b could not be asked about it


async def test_a_server_that_cannot_be_reached_at_start_keeps_the_others() -> None:
    class Unreachable(Server):
        async def start(self, sink: object) -> None:
            raise PbxUnavailable("connection refused")

    a, b = Server(), Unreachable()
    pbx = SeveralPbxs({"a": a, "b": b})

    async def sink(event: PbxEvent) -> None:
        return None

    await pbx.start(sink)
    assert a.sink is not None
    await pbx.aclose()
    assert (a.closed, b.closed) == (1, 1)


async def test_what_a_server_logs_names_it(
    world: tuple[SeveralPbxs, Server, Server, list[PbxEvent]],
) -> None:
    pbx, _, b, _ = world
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logs.configure(handler)
    adapter_log = logging.getLogger("voicedock.pbx.test-adapter")
    adapter_log.addHandler(handler)
    adapter_log.setLevel(logging.INFO)

    async def logged_hangup(call_id: str, reason: str = "normal") -> None:
        adapter_log.info("hanging up")

    b.hangup = logged_hangup  # type: ignore[method-assign]
    try:
        await pbx.originate(request("call-1", "b"))
        await pbx.hangup("call-1")
        adapter_log.info("outside")
    finally:
        adapter_log.removeHandler(handler)
    first, second = stream.getvalue().splitlines()
    assert first.endswith("hanging up [pbx b]")
    assert second.endswith("outside")
