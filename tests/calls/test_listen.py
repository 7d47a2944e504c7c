"""``Listening``: who may listen to which call on this node, and how many at once."""

from __future__ import annotations

import numpy as np
import pytest

from voicedock.calls.control import LiveCalls
from voicedock.calls.errors import CallNotActive
from voicedock.calls.listening import CallOnAnotherNode, Listening, backlog_frames
from voicedock.config import ListenSettings
from voicedock.domain.records import Call, CallStatus, Direction
from voicedock.errors import NotFound, RateLimited
from voicedock.media.listen_tap import ListenTap

pytestmark = pytest.mark.unit

NODE = "node-a"


class Store:
    """What ``Listening`` reads: a call by organization and id."""

    def __init__(self, *calls: Call) -> None:
        self.calls = {call.id: call for call in calls}

    async def get_call(self, org_id: str | None, call_id: str) -> Call | None:
        call = self.calls.get(call_id)
        return call if call is not None and call.organization_id == org_id else None


class RunningCall:
    def __init__(self, tap: ListenTap | None) -> None:
        self.tap = tap

    def listen_tap(self) -> ListenTap | None:
        return self.tap


def call(call_id: str, org: str = "acme", **changes: object) -> Call:
    base = Call(call_id, org, Direction.OUTBOUND, CallStatus.IN_PROGRESS, "+31612345678", None)
    for name, value in changes.items():
        setattr(base, name, value)
    return base


def listening(*calls: Call, **settings: int) -> tuple[Listening, LiveCalls]:
    live = LiveCalls()
    for c in calls:
        live.attach(c.id, RunningCall(ListenTap(8000)))  # type: ignore[arg-type]
    store = Store(*calls)
    return Listening(ListenSettings(**settings), NODE, store, live), live  # type: ignore[arg-type]


async def test_refusals_before_anyone_listens() -> None:
    ringing = call("c-ringing", status=CallStatus.CONNECTING)
    elsewhere = call("c-elsewhere", owner_node="node-b")
    starting = call("c-starting")
    here = call("c-here", owner_node=NODE)
    hub, live = listening(ringing, elsewhere, here)
    live.attach(starting.id, RunningCall(None))  # type: ignore[arg-type]
    hub._store.calls[starting.id] = starting  # type: ignore[attr-defined]
    with pytest.raises(NotFound):
        await hub.call("globex", here.id)  # another organization's call: not found
    with pytest.raises(CallNotActive, match="connecting"):
        await hub.call("acme", ringing.id)
    with pytest.raises(CallOnAnotherNode) as other:
        await hub.call("acme", elsewhere.id)
    assert other.value.body()["node"] == "node-b"
    with pytest.raises(CallNotActive, match="not started"):
        await hub.call("acme", starting.id)
    found, tap = await hub.call("acme", here.id)
    assert (found.id, tap.sample_rate) == (here.id, 8000)


async def test_listeners_are_capped_per_call_and_per_organization() -> None:
    calls = [call(f"c-{i}") for i in range(3)]
    hub, _ = listening(*calls, max_listeners_per_call=2, max_listeners_per_organization=3)
    async with hub.listen("acme", "c-0"), hub.listen("acme", "c-0"):
        with pytest.raises(RateLimited, match="this call has 2 listeners"):
            async with hub.listen("acme", "c-0"):
                pass
        async with hub.listen("acme", "c-1") as (_, listener):
            assert hub.listeners == 3
            with pytest.raises(RateLimited, match="this organization has 3 listeners"):
                async with hub.listen("acme", "c-2"):
                    pass
            listener.put(b"x" * 10)
        assert hub.listeners == 2
    assert hub.listeners == 0
    async with hub.listen("acme", "c-2"):  # places are given back
        pass


async def test_drops_are_counted_after_a_listener_leaves_and_the_hello_states_the_format() -> None:
    hub, live = listening(call("c-1"), max_backlog_ms=100)
    assert backlog_frames(hub.settings) == 10  # 100 ms of both sides
    running = live.get("c-1")
    assert isinstance(running, RunningCall)
    tap = running.tap
    assert tap is not None
    async with hub.listen("acme", "c-1") as (found, listener):
        for _ in range(25):
            tap.caller(np.zeros(160, dtype=np.int16))
        assert listener.dropped == 15
        assert hub.frames_dropped == 15
        hello = hub.hello(found, listener)
        assert hello["sample_rate"] == 8000
        assert hello["supervisor_extension"] is None
    assert hub.frames_dropped == 15  # still counted once it left
    tap.end("call-ended")
    with pytest.raises(CallNotActive):
        await hub.call("acme", "c-1")
