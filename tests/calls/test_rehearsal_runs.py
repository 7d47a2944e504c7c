"""A test suite's runs on the node: scenarios called in parallel within ``[rehearsal]
max_concurrent``, each judged and stored as it ends; a run the node stops is not left running;
the caller legs' PBX events reach the run, every other event the engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fakes.world import make_settings
from voicedock.calls.engine.inbound import PlacedTestCall
from voicedock.calls.rehearsal.awaited_calls import AwaitedCalls
from voicedock.calls.rehearsal.runs import STOPPED, Rehearsals
from voicedock.calls.rehearsal.slots import FairSlots
from voicedock.calls.rehearsal.test_calls import CallSetup, Observed
from voicedock.config import RetentionSettings
from voicedock.domain.records import Organization
from voicedock.domain.rehearsal import (
    HeardTurn,
    Outcome,
    RunStatus,
    Said,
    SayStep,
    Scenario,
    Suite,
    SuiteRun,
)
from voicedock.errors import RateLimited
from voicedock.media.errors import MediaConnectionLost
from voicedock.organizations.retention import apply_retention
from voicedock.pbx.base import PbxEvent, PbxEventKind
from voicedock.store import Store, open_store

pytestmark = pytest.mark.unit

ORG = "org_1"


class SlowCalls:
    """Each test call takes ``seconds``; the most at once is counted."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.now = 0
        self.most = 0

    async def call(self, setup: CallSetup) -> Observed:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.now -= 1
        heard = [HeardTurn(role="assistant", text=f"hello {setup.scenario.name}", at_ms=0)]
        return Observed(call_id=f"call-{setup.scenario.name}", heard=heard)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path / 'runs.db'}")
    await opened.migrate()
    async with opened.transaction() as tx:
        await tx.insert_organization(Organization(id=ORG, name="Org"))
    try:
        yield opened
    finally:
        await opened.aclose()


async def _suite(store: Store, names: list[str]) -> Suite:
    scenarios = [
        Scenario(name=n, steps=[SayStep(text="Hi")], expectations=[Said(contains=f"hello {n}")])
        for n in names
    ]
    suite = Suite(id="suite_1", organization_id=ORG, name="s", scenarios=scenarios)
    async with store.transaction() as tx:
        await tx.insert_suite(suite)
    return suite


async def _ended(store: Store, run_id: str) -> RunStatus:
    for _ in range(200):
        run = await store.get_suite_run(ORG, run_id)
        assert run is not None
        if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            return run.status
        await asyncio.sleep(0.02)
    raise AssertionError("the run did not end")


async def test_scenarios_run_in_parallel_within_the_node_s_bound(store: Store) -> None:
    settings = make_settings()
    settings.rehearsal.max_concurrent = 2
    calls = SlowCalls(0.1)
    rehearsals = Rehearsals(store, settings, calls)
    await rehearsals.start()
    try:
        suite = await _suite(store, ["a", "b", "c", "d", "e"])
        run = await rehearsals.ask(ORG, suite, assistant={"first_message": "Hi"})
        assert await _ended(store, run.id) is RunStatus.PASSED
    finally:
        await rehearsals.aclose()
    assert calls.most == 2
    stored = await store.get_suite_run(ORG, run.id)
    assert stored is not None
    assert [r.name for r in stored.results] == ["a", "b", "c", "d", "e"]
    assert {r.outcome for r in stored.results} == {Outcome.PASSED}


class LostCalls:
    """Each test call fails in a task group, its media connection lost."""

    async def call(self, setup: CallSetup) -> Observed:
        async with asyncio.TaskGroup() as group:
            group.create_task(asyncio.sleep(1))
            raise MediaConnectionLost("media connection lost (peer)")
        raise AssertionError("unreachable")


async def test_a_failed_test_call_s_reason_names_what_failed_not_its_task_group(
    store: Store,
) -> None:
    rehearsals = Rehearsals(store, make_settings(), LostCalls())
    await rehearsals.start()
    try:
        suite = await _suite(store, ["a"])
        run = await rehearsals.ask(ORG, suite, assistant={"first_message": "Hi"})
        assert await _ended(store, run.id) is RunStatus.ERROR
    finally:
        await rehearsals.aclose()
    stored = await store.get_suite_run(ORG, run.id)
    assert stored is not None
    (result,) = stored.results
    assert result.reason == "the test call failed (media connection lost (peer))"


async def test_a_run_the_node_stops_ends_in_error(store: Store) -> None:
    rehearsals = Rehearsals(store, make_settings(), SlowCalls(60))
    await rehearsals.start()
    suite = await _suite(store, ["a"])
    run = await rehearsals.ask(ORG, suite, assistant={"first_message": "Hi"})
    await asyncio.sleep(0.1)
    await rehearsals.aclose()
    stored = await store.get_suite_run(ORG, run.id)
    assert stored is not None
    assert (stored.status, stored.error) == (RunStatus.ERROR, STOPPED)


async def test_a_caller_leg_s_events_reach_the_run_and_others_the_engine() -> None:
    placed = AwaitedCalls()
    engine: list[PbxEvent] = []

    async def handle(event: PbxEvent) -> None:
        engine.append(event)

    sink = placed.route(handle)
    leg = placed.leg("call-outbound-leg")
    await sink(PbxEvent("call-outbound-leg", PbxEventKind.ANSWERED))
    await sink(PbxEvent("call-other", PbxEventKind.ANSWERED))
    await sink(PbxEvent("call-outbound-leg", PbxEventKind.HANGUP))
    assert leg.answered.is_set()
    assert leg.gone.is_set()
    assert [e.call_id for e in engine] == ["call-other"]
    placed.forget("call-outbound-leg")
    await sink(PbxEvent("call-outbound-leg", PbxEventKind.HANGUP))
    assert [e.call_id for e in engine] == ["call-other", "call-outbound-leg"]

    offer = PlacedTestCall("call-_unknown_x", ORG, None, "run")  # type: ignore[arg-type]
    placed.offer("123", offer)
    assert placed.claim("123") is offer
    assert placed.claim("123") is None  # once


async def test_runs_at_once_are_counted_across_workers_sharing_the_database(
    store: Store, tmp_path: Path
) -> None:
    """Two workers (each its own store on one database): the runs one holds count on the
    other, so the organization's bound holds across them."""
    settings = make_settings()
    settings.rehearsal.max_runs_per_organization = 2
    other_store = await open_store(f"sqlite:///{tmp_path / 'runs.db'}")
    first = Rehearsals(store, settings, SlowCalls(60))
    second = Rehearsals(other_store, settings, SlowCalls(60))
    await first.start()
    await second.start()
    try:
        suite = await _suite(store, ["a"])
        await first.ask(ORG, suite, assistant={"first_message": "Hi"})
        await second.ask(ORG, suite, assistant={"first_message": "Hi"})
        with pytest.raises(RateLimited):
            await first.ask(ORG, suite, assistant={"first_message": "Hi"})
        with pytest.raises(RateLimited):
            await second.ask(ORG, suite, assistant={"first_message": "Hi"})
    finally:
        await first.aclose()
        await second.aclose()
        await other_store.aclose()
    # Ended (the workers stopped): the organization may ask again.
    again = Rehearsals(store, settings, SlowCalls(0))
    await again.start()
    try:
        run = await again.ask(ORG, suite, assistant={"first_message": "Hi"})
        assert await _ended(store, run.id) is RunStatus.PASSED
    finally:
        await again.aclose()


async def test_the_node_s_slots_go_to_the_organizations_in_turn() -> None:
    slots = FairSlots(1)
    order: list[str] = []
    go = asyncio.Event()

    async def use(org: str) -> None:
        async with slots.held(org):
            order.append(org)
            await go.wait()

    async with asyncio.TaskGroup() as group:
        for org in ["a"] * 4 + ["b"] * 2 + ["c"]:
            group.create_task(use(org))
        await asyncio.sleep(0.01)
        go.set()
    assert order == ["a", "a", "b", "c", "a", "b", "a"]


async def test_a_waiter_cancelled_gives_its_turn_on() -> None:
    slots = FairSlots(1)
    got: list[str] = []
    async with slots.held("a"):
        waiting = asyncio.create_task(_hold(slots, "b", got))
        after = asyncio.create_task(_hold(slots, "c", got))
        await asyncio.sleep(0.01)
        waiting.cancel()
        await asyncio.sleep(0.01)
    await after
    assert got == ["c"]
    async with slots.held("d"):  # the slot is free again
        pass


async def _hold(slots: FairSlots, org: str, got: list[str]) -> None:
    async with slots.held(org):
        got.append(org)


async def test_retention_deletes_finished_runs_older_than_its_days(store: Store) -> None:
    suite = await _suite(store, ["a"])
    old = datetime.now(UTC) - timedelta(days=40)
    runs = {
        status: SuiteRun(
            id=f"run-{status.value}", organization_id=ORG, suite_id=suite.id, status=status,
            created_at=old,
        )
        for status in (RunStatus.PASSED, RunStatus.RUNNING)
    }  # fmt: skip
    async with store.transaction() as tx:
        for run in runs.values():
            await tx.insert_suite_run(run)
    settings = RetentionSettings(test_run_days=30)
    done = await apply_retention(store, settings)
    assert done.test_runs == 1
    assert await store.get_suite_run(ORG, "run-passed") is None
    assert await store.get_suite_run(ORG, "run-running") is not None
