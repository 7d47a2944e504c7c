"""Start-up recovery (``calls/recovery.py``) over a fake PBX whose legs outlive the service:
the calls a killed run left end ``service-restart``, or go on (resumed) when the PBX adopts
them and a runner serves them."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fakes.calls import calls_of, place_outbound
from fakes.memory_store import MemoryStore
from fakes.pbx import FakePbx
from fakes.requests import outbound_request
from fakes.turns import Turn
from fakes.world import ACME, ACME_NUMBERS, DESTINATION, SUPPORT_ID, make_settings, org_id
from voicedock.calls.engine import CallEngine, EngineOptions
from voicedock.calls.observer import Observers
from voicedock.calls.recovery import (
    CallRecovery,
    last_activity,
    plan_recovery,
    resumed_config,
)
from voicedock.calls.transitions import RESUMED, SERVICE_RESTART, resumed_event_data
from voicedock.config import DEFAULT_RESUME_MESSAGE, Settings
from voicedock.domain.assistant_config import AssistantConfig, config_of
from voicedock.domain.records import Call, CallEvent, CallMessage, CallStatus, Direction
from voicedock.errors import PbxError
from voicedock.organizations.config_mirror import mirror_config
from voicedock.pbx.base import InboundCall, LeftoverPbx, OriginateRequest, ResumablePbx
from voicedock.pipeline.frames import supervisor_note
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


async def cut_off(service: Service) -> None:
    """The node loses its database (both its store and its lease's own connection), as a
    network partition or a kill leaves it: its lease is no longer renewed."""
    await service.store.aclose()
    if service.options.lease_store is not None:
        await service.options.lease_store.aclose()


async def place(engine: CallEngine) -> str:
    request = outbound_request({"destination": DESTINATION, "assistant_id": SUPPORT_ID})
    call_id = (await place_outbound(engine, ACME_ID, request)).body["call_id"]
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
    await service.engine.records.store_transcript_turn(answered, Turn("assistant", "Hello there"))
    inbound = await service.engine.inbound.accept(
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
    seen = Seen([], {})
    engine = CallEngine(store, pbx, settings, options=EngineOptions(observers=Observers(seen)))
    recovery = await CallRecovery(store, pbx, engine).recover(
        await store.list_active_calls(), deadline=0.6
    )
    assert recovery.legs_left == {stuck}
    assert sorted(recovery.ended) == sorted([stuck, fine])
    assert len(pbx.asked) >= 2  # asked again until the deadline
    assert world.legs == {stuck}
    # Reported like any end: the status events and the end-of-call reports.
    ends = [e for e in seen.events if e.type == "status" and e.data.get("to") == "ended"]
    assert {e.call_id for e in ends} == {stuck, fine}
    assert set(seen.reports) == {stuck, fine}
    # A second recovery (another restart) finds nothing to do.
    again = await CallRecovery(store, pbx, engine).recover(await store.list_active_calls())
    assert again.ended == []
    await store.aclose()


async def test_a_pbx_that_cannot_name_old_legs_gets_a_hang_up_per_call() -> None:
    settings = make_settings()
    store = MemoryStore()
    await mirror_config(store, settings)
    pbx = FakePbx()
    engine = CallEngine(store, pbx, settings)
    call_id = await place(engine)
    recovery = await CallRecovery(store, pbx, engine).recover(await store.list_active_calls())
    assert recovery.ended == [call_id]
    assert pbx.hangups == [(call_id, "normal")]
    await store.aclose()


# ---- resume ------------------------------------------------------------------------------------

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def a_call(status: CallStatus, **changes: Any) -> Call:
    call = Call(
        id="call-outbound-abc",
        organization_id=ACME_ID,
        direction=Direction.OUTBOUND,
        status=status,
        caller_phone=None,
        assistant_phone="+31201234567",
        created_at=T0,
        updated_at=T0,
    )
    return dataclasses.replace(call, **changes)


def message(role: str, content: str, seq: int, at: float = 0.0) -> CallMessage:
    started = T0 + timedelta(seconds=at)
    return CallMessage(
        "call-outbound-abc", role, content, started, started + timedelta(seconds=1), seq=seq
    )


def test_only_answered_calls_are_resumed_and_only_when_resuming_is_possible() -> None:
    answered, ringing = a_call(CallStatus.IN_PROGRESS), a_call(CallStatus.CONNECTING)
    over = a_call(CallStatus.ENDED)
    assert plan_recovery([answered, ringing, over], can_resume=True) == ([answered], [ringing])
    assert plan_recovery([answered, ringing, over], can_resume=False) == ([], [answered, ringing])


def test_a_resumed_conversation_says_the_resume_line_and_knows_the_earlier_turns() -> None:
    config = {
        "first_message": "Hello, how can I help?",
        "system_prompt": "Be brief.",
        "llm_config": {"model": "m", "messages": [{"role": "system", "content": "Facts."}]},
    }
    stored = [
        message("user", "I need a plumber", 2, at=5),
        message("assistant", "Hello, how can I help?", 1, at=0),
        message("system", "The caller pressed 1.", 3, at=7),
        message("assistant", "   ", 4, at=8),
        message("supervisor", "Offer a discount.", 5, at=9),
    ]
    resumed = resumed_config(config_of(config), stored, "Sorry, we were cut off.")
    assert resumed.first_message == "Sorry, we were cut off."
    assert resumed.system_prompt == "Be brief."
    assert resumed.llm_config == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Facts."},
            {"role": "assistant", "content": "Hello, how can I help?"},
            {"role": "user", "content": "I need a plumber"},
            {"role": "system", "content": supervisor_note("Offer a discount.")},
        ],
    }
    # The call's own configuration is left as it was.
    assert config["first_message"] == "Hello, how can I help?"
    assert config["llm_config"]["messages"] == [{"role": "system", "content": "Facts."}]
    assert resumed_config(config_of({}), [], DEFAULT_RESUME_MESSAGE).llm_config == {"messages": []}


def test_the_gap_runs_from_the_last_sign_of_the_call_to_the_resume() -> None:
    call = a_call(CallStatus.IN_PROGRESS, updated_at=T0 + timedelta(seconds=3))
    assert last_activity(call, []) == T0 + timedelta(seconds=3)
    since = last_activity(call, [message("assistant", "Hi", 1, at=10)])
    assert since == T0 + timedelta(seconds=11)  # the end of the last message
    assert resumed_event_data(since, since + timedelta(seconds=4.26)) == {
        "gap_seconds": 4.3,
        "last_activity_at": since.isoformat(),
    }


class ResumableFakePbx(LeftoverFakePbx):
    """Adopts the calls whose remote leg is still up (``ResumablePbx``)."""

    def __init__(self, world: PbxLegs, *, fail: PbxError | None = None) -> None:
        super().__init__(world)
        self.adopted: list[tuple[str, str | None]] = []
        self.fail = fail

    async def adopt_call(self, call_id: str, remote_ref: str | None) -> bool:
        if self.fail is not None:
            raise self.fail
        if (remote_ref or call_id) not in self.world.legs:
            return False
        self.adopted.append((call_id, remote_ref))
        return True


class FakeResumer:
    """The runner's side: ``outcome`` says whether the conversation starts (``None``: never)."""

    def __init__(self, outcome: bool | None = True) -> None:
        self.outcome = outcome
        self.resumed: list[tuple[str, AssistantConfig, list[str]]] = []
        self.cancelled = False

    async def resume(self, call: Call, messages: Sequence[CallMessage]) -> bool:
        self.resumed.append((call.id, call.assistant_config, [m.content for m in messages]))
        if self.outcome is None:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        return bool(self.outcome)


async def left_by_a_killed_run(
    world: PbxLegs,
) -> tuple[MemoryStore, Settings, str, str]:
    """A store with one answered call (greeted) and one still ringing, both legs up."""
    settings = make_settings()
    store = MemoryStore()
    await mirror_config(store, settings)
    old_pbx = LeftoverFakePbx(world)
    old, runner = calls_of(store, old_pbx, settings)
    # The service's event path; not started, it serves no conversation (nor needs closing).
    await old_pbx.start(runner.events.handle_pbx_event)
    answered, ringing = await place(old), await place(old)
    await old_pbx.answer(answered)
    await old.records.store_transcript_turn(answered, Turn("assistant", "Hi!"))
    return store, settings, answered, ringing


async def test_an_answered_call_whose_caller_is_there_goes_on_with_a_resumed_event() -> None:
    world = PbxLegs()
    store, settings, answered, ringing = await left_by_a_killed_run(world)
    pbx = ResumableFakePbx(world)
    assert isinstance(pbx, ResumablePbx)
    assert isinstance(pbx, LeftoverPbx)
    seen = Seen([], {})
    engine = CallEngine(store, pbx, settings, options=EngineOptions(observers=Observers(seen)))
    resumer = FakeResumer()
    recovery = await CallRecovery(store, pbx, engine).recover(
        await store.list_active_calls(), resumer=resumer, resume_message="Sorry!"
    )
    assert recovery.resumed == [answered]
    assert recovery.ended == [ringing]  # still ringing: given up
    assert pbx.adopted == [(answered, None)]
    assert world.legs == {answered}  # the ringing leg hung up, the caller still there
    assert pbx.hangups == []
    ((call_id, config, earlier),) = resumer.resumed
    assert call_id == answered
    assert earlier == ["Hi!"]
    assert config.first_message == "Sorry!"
    assert config.llm_config["messages"][-1] == {"role": "assistant", "content": "Hi!"}
    call = await store.get_call(None, answered)
    assert call is not None
    assert call.status is CallStatus.IN_PROGRESS
    assert call.end_reason is None
    (event,) = [e for e in await store.list_events(answered) if e.type == RESUMED]
    assert event.data["gap_seconds"] >= 0
    assert [e.type for e in seen.events if e.call_id == answered] == [RESUMED]  # reported
    await store.aclose()


async def test_a_call_whose_caller_left_meanwhile_ends_service_restart() -> None:
    world = PbxLegs()
    store, settings, answered, _ = await left_by_a_killed_run(world)
    world.legs.discard(answered)  # the caller hung up while voicedock was down
    pbx = ResumableFakePbx(world)
    engine = CallEngine(store, pbx, settings)
    resumer = FakeResumer()
    recovery = await CallRecovery(store, pbx, engine).recover(
        await store.list_active_calls(), resumer=resumer
    )
    assert recovery.resumed == []
    assert answered in recovery.ended
    assert resumer.resumed == []
    assert {answered: None} in pbx.asked  # what is left of it (media leg, bridge) hung up
    await assert_ended_service_restart(store, answered)
    await store.aclose()


async def test_a_pbx_error_while_adopting_ends_the_call_service_restart() -> None:
    world = PbxLegs()
    store, settings, answered, _ = await left_by_a_killed_run(world)
    pbx = ResumableFakePbx(world, fail=PbxError("ARI said 500"))
    engine = CallEngine(store, pbx, settings)
    recovery = await CallRecovery(store, pbx, engine).recover(
        await store.list_active_calls(), resumer=FakeResumer()
    )
    assert recovery.resumed == []
    assert world.legs == set()
    await assert_ended_service_restart(store, answered)
    await store.aclose()


@pytest.mark.parametrize("outcome", [False, None], ids=["failed", "too-slow"])
async def test_a_conversation_that_does_not_start_ends_the_call_service_restart(
    outcome: bool | None,
) -> None:
    world = PbxLegs()
    store, settings, answered, _ = await left_by_a_killed_run(world)
    pbx = ResumableFakePbx(world)
    engine = CallEngine(store, pbx, settings)
    resumer = FakeResumer(outcome)
    loop = asyncio.get_running_loop()
    started = loop.time()
    recovery = await CallRecovery(store, pbx, engine).recover(
        await store.list_active_calls(), resumer=resumer, deadline=0.5
    )
    assert loop.time() - started < 2.0  # within the deadline
    assert resumer.cancelled is (outcome is None)
    assert recovery.resumed == []
    assert answered in recovery.ended
    assert (answered, "normal") in pbx.hangups  # adopted: hung up as this run's call
    await assert_ended_service_restart(store, answered)
    assert not [e for e in await store.list_events(answered) if e.type == RESUMED]
    await store.aclose()


async def test_resuming_off_hangs_up_every_call_left(tmp_path: Path) -> None:
    world = PbxLegs()
    settings = make_settings(f"sqlite:///{tmp_path / 'off.db'}")
    settings.calls.resume_after_restart = False
    first = ResumableFakePbx(world)
    service = await Service.open(settings, pbx=first)
    answered = await place(service.engine)
    await first.answer(answered)
    await service.aclose()

    second = ResumableFakePbx(world)
    async with await Service.open(settings, pbx=second) as restarted:
        assert second.adopted == []
        assert world.legs == set()
        await assert_ended_service_restart(restarted.store, answered)


async def assert_ended_service_restart(store: Any, call_id: str) -> None:
    call = await store.get_call(None, call_id)
    assert call is not None
    assert (call.status, call.end_reason) == (CallStatus.ENDED, SERVICE_RESTART)


async def test_a_resumed_call_stays_up_when_its_resumed_event_is_not_stored() -> None:
    world = PbxLegs()
    store, settings, answered, _ = await left_by_a_killed_run(world)
    pbx = ResumableFakePbx(world)
    engine = CallEngine(store, pbx, settings)

    async def store_down(call_id: str, since: datetime) -> None:
        raise RuntimeError("the store went away")

    recovering = CallRecovery(store, pbx, engine)
    recovering.mark_resumed = store_down  # type: ignore[method-assign]
    recovery = await recovering.recover(await store.list_active_calls(), resumer=FakeResumer())
    assert recovery.resumed == [answered]
    assert pbx.hangups == []
    assert answered in world.legs
    call = await store.get_call(None, answered)
    assert call is not None
    assert call.status is CallStatus.IN_PROGRESS
    await store.aclose()
