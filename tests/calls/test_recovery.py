"""Start-up recovery (``calls/recovery.py``) over a fake PBX whose legs outlive the service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from fakes.memory_store import MemoryStore
from fakes.pbx import FakePbx
from fakes.world import ACME, ACME_NUMBERS, DESTINATION, SUPPORT_ID, make_settings, org_id
from voicedock.calls.config_mirror import mirror_config
from voicedock.calls.engine import CallEngine
from voicedock.calls.models import Call, CallEvent, CallMessage, CallStatus
from voicedock.calls.outbound_request import parse_outbound_request
from voicedock.calls.recovery import recover_calls
from voicedock.calls.transitions import SERVICE_RESTART
from voicedock.pbx.base import InboundCall, OriginateRequest
from voicedock.service import Service
from voicedock.store.base import Transaction

pytestmark = pytest.mark.unit

ACME_ID = org_id(ACME)
INBOUND_CHANNEL = "1790000000.42"  # Asterisk's own id of an inbound caller's channel


class PbxLegs:
    """The PBX's side: legs (by PBX id) that stay up when voicedock dies."""

    def __init__(self) -> None:
        self.legs: set[str] = set()
        self.stuck: set[str] = set()  # legs the PBX keeps listing whatever is asked


class LeftoverFakePbx(FakePbx):
    """A ``LeftoverPbx``: knows a previous run's legs only through what the caller passes."""

    def __init__(self, world: PbxLegs) -> None:
        super().__init__()
        self.world = world
        self.asked: list[dict[str, str | None]] = []

    async def originate(self, request: OriginateRequest) -> None:
        await super().originate(request)
        self.world.legs.add(request.call_id)  # outbound: our call id is the channel id

    async def hang_up_leftovers(self, calls: Mapping[str, str | None]) -> set[str]:
        self.asked.append(dict(calls))
        left = set()
        for call_id, ref in calls.items():
            leg = ref or call_id
            if leg in self.world.stuck:
                left.add(call_id)
            else:
                self.world.legs.discard(leg)
        return left


@dataclass
class Seen:
    events: list[CallEvent]
    reports: dict[str, list[str]]

    async def on_event(self, tx: Transaction, call: Call, event: CallEvent) -> None:
        self.events.append(event)

    async def on_report(self, tx: Transaction, call: Call, messages: Sequence[CallMessage]) -> None:
        self.reports[call.id] = [m.content for m in messages]


@dataclass(frozen=True)
class Turn:
    role: str
    content: str
    started_at: float = 1.0
    ended_at: float = 2.0
    interrupted: bool = False


async def place(engine: CallEngine) -> str:
    request = parse_outbound_request({"destination": DESTINATION, "assistant_id": SUPPORT_ID})
    call_id = (await engine.place_outbound(ACME_ID, request)).body["call_id"]
    assert isinstance(call_id, str)
    return call_id


async def test_restart_hangs_up_the_legs_a_killed_run_left_and_ends_its_calls(
    tmp_path: Path,
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'restart.db'}")
    world = PbxLegs()
    # The first run: two answered calls (one inbound) and one still ringing, then it dies
    # (FakePbx carries no media, so closing the service ends nothing: the store and the PBX
    # are left exactly as a kill -9 leaves them).
    first = LeftoverFakePbx(world)
    service = await Service.open(settings, pbx=first)
    answered, ringing = await place(service.engine), await place(service.engine)
    await first.answer(answered)
    await service.engine.record_transcript_turn(answered, Turn("assistant", "Hello there"))
    inbound = await service.engine.handle_inbound(
        InboundCall(INBOUND_CHANNEL, "+31623731537", ACME_NUMBERS[0])
    )
    assert inbound is not None
    world.legs.add(INBOUND_CHANNEL)
    await first.answer(inbound)
    await service.aclose()
    assert world.legs == {answered, ringing, INBOUND_CHANNEL}

    second = LeftoverFakePbx(world)
    async with await Service.open(settings, pbx=second) as restarted:
        # Once the service is open (before the API serves), nothing is left.
        assert world.legs == set()
        assert second.asked[0] == {answered: None, ringing: None, inbound: INBOUND_CHANNEL}
        for call_id in (answered, ringing, inbound):
            call = await restarted.store.get_call(None, call_id)
            assert call is not None
            assert (call.status, call.end_reason, call.error) == (
                CallStatus.ENDED,
                SERVICE_RESTART,
                None,
            )
            assert call.ended_at is not None
            last = [e for e in await restarted.store.list_events(call_id) if e.type == "status"]
            assert last[-1].data["end_reason"] == SERVICE_RESTART
        answered_call = await restarted.store.get_call(None, answered)
        assert answered_call is not None
        assert answered_call.started_at is not None
        kept = await restarted.store.list_messages(answered)
        assert [m.content for m in kept] == ["Hello there"]  # the transcript stays
        assert await restarted.store.list_active_calls() == []


async def test_calls_end_within_the_deadline_even_if_the_pbx_keeps_a_leg() -> None:
    settings = make_settings()
    store = MemoryStore()
    await mirror_config(store, settings)
    world = PbxLegs()
    old = CallEngine(store, LeftoverFakePbx(world), settings)
    stuck, fine = await place(old), await place(old)
    world.stuck.add(stuck)

    pbx = LeftoverFakePbx(world)
    engine = CallEngine(store, pbx, settings)
    seen = Seen([], {})
    engine.observers.add(seen)
    recovery = await recover_calls(engine, pbx, await store.list_active_calls(), deadline=0.6)
    assert recovery.legs_left == {stuck}
    assert sorted(recovery.ended) == sorted([stuck, fine])
    assert len(pbx.asked) >= 2  # asked again until the deadline
    assert world.legs == {stuck}
    # Reported like any end: the status events and the end-of-call reports.
    ends = [e for e in seen.events if e.type == "status" and e.data.get("to") == "ended"]
    assert {e.call_id for e in ends} == {stuck, fine}
    assert set(seen.reports) == {stuck, fine}
    # A second recovery (another restart) finds nothing to do.
    again = await recover_calls(engine, pbx, await store.list_active_calls())
    assert again.ended == []
    await store.aclose()


async def test_a_pbx_that_cannot_name_old_legs_gets_a_hang_up_per_call() -> None:
    settings = make_settings()
    store = MemoryStore()
    await mirror_config(store, settings)
    pbx = FakePbx()
    engine = CallEngine(store, pbx, settings)
    call_id = await place(engine)
    recovery = await recover_calls(engine, pbx, await store.list_active_calls())
    assert recovery.ended == [call_id]
    assert pbx.hangups == [(call_id, "normal")]
    await store.aclose()
