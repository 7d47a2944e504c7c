"""Test suites and their runs, on both backends: typed scenarios round-trip, paging by cursor,
organization scoping, and the test calls kept out of the calls list and usage."""

from __future__ import annotations

from datetime import timedelta

import pytest

from voicedock.domain.records import CallStatus
from voicedock.domain.rehearsal import (
    Ended,
    Outcome,
    PressStep,
    RunStatus,
    Said,
    SayStep,
    Scenario,
    ScenarioResult,
    Suite,
    SuiteRun,
    ToolMock,
    Verdict,
)
from voicedock.store import Store
from voicedock.store.base import CallQuery, OldestFirstQuery, UsageQuery

from .builders import BASE_TIME, at, insert_call, make_call, seed_org

pytestmark = pytest.mark.unit

HOURS = Scenario(
    name="asks the opening hours",
    steps=[SayStep(text="When are you open?"), PressStep(keys="1234#")],
    expectations=[Said(contains="nine to five"), Ended(end_reason="customer-ended-call")],
    tool_mocks=[ToolMock(name="lookup", result='{"open": true}')],
)


def _suite(org_id: str, n: int) -> Suite:
    moment = BASE_TIME + timedelta(seconds=n)
    return Suite(
        id=f"suite_{n}",
        organization_id=org_id,
        name=f"suite {n}",
        scenarios=[HOURS],
        created_at=moment,
        updated_at=moment,
    )


async def test_a_suite_and_its_run_round_trip_typed(store: Store) -> None:
    org = await seed_org(store)
    suite = _suite(org.id, 1)
    run = SuiteRun(
        id="run_1", organization_id=org.id, suite_id=suite.id, status=RunStatus.QUEUED,
        assistant={"first_message": "Hi"}, created_at=BASE_TIME,
    )  # fmt: skip
    async with store.transaction() as tx:
        await tx.insert_suite(suite)
        await tx.insert_suite_run(run)
    assert await store.get_suite(org.id, suite.id) == suite
    assert await store.get_suite("other_org", suite.id) is None
    assert await store.get_suite_run(org.id, run.id) == run

    run.status = RunStatus.FAILED
    run.results = [
        ScenarioResult(
            name=HOURS.name,
            outcome=Outcome.FAILED,
            reason="expectations[0] (said): not heard",
            expectations=[Verdict(index=0, type="said", passed=False, reason="not heard")],
        )
    ]
    run.ended_at = at(30)
    async with store.transaction() as tx:
        await tx.update_suite_run(run)
    stored = await store.get_suite_run(org.id, run.id)
    assert stored == run
    assert stored is not None
    assert isinstance(stored.results[0], ScenarioResult)

    async with store.transaction() as tx:
        assert await tx.delete_suite(org.id, suite.id)
        assert not await tx.delete_suite(org.id, suite.id)
    assert await store.get_suite_run(org.id, run.id) is None


async def test_suites_page_by_cursor_within_the_organization(store: Store) -> None:
    org = await seed_org(store, "Acme")
    other = await seed_org(store, "Other")
    async with store.transaction() as tx:
        for n in range(5):
            await tx.insert_suite(_suite(org.id, n))
        await tx.insert_suite(_suite(other.id, 9))
    first = await store.list_suites(OldestFirstQuery(org.id, limit=2))
    assert [s.id for s in first.records] == ["suite_0", "suite_1"]
    assert first.total == 5
    second = await store.list_suites(OldestFirstQuery(org.id, limit=2, after="suite_1"))
    assert [s.id for s in second.records] == ["suite_2", "suite_3"]
    last = await store.list_suites(OldestFirstQuery(org.id, limit=2, after="suite_3"))
    assert [s.id for s in last.records] == ["suite_4"]
    # another organization's suite is no cursor here
    assert (await store.list_suites(OldestFirstQuery(org.id, after="suite_9"))).records == []


async def test_test_calls_stay_out_of_the_list_and_usage_unless_asked(store: Store) -> None:
    org = await seed_org(store)
    real = make_call(org.id, status=CallStatus.ENDED)
    test = make_call(org.id, status=CallStatus.ENDED)
    test.test_run_id = "run_1"
    await insert_call(store, real)
    await insert_call(store, test)
    listed = await store.list_calls(CallQuery(organization_id=org.id))
    assert [c.id for c in listed.calls] == [real.id]
    assert listed.total == 1
    everything = await store.list_calls(CallQuery(organization_id=org.id, include_tests=True))
    assert {c.id for c in everything.calls} == {real.id, test.id}
    window = (BASE_TIME - timedelta(days=1), BASE_TIME + timedelta(days=1))
    usage = await store.usage(UsageQuery(org.id, *window, group_by="day"))
    assert sum(r.calls for r in usage.calls) == 1
    usage = await store.usage(UsageQuery(org.id, *window, group_by="day", include_tests=True))
    assert sum(r.calls for r in usage.calls) == 2


async def test_test_calls_count_against_no_dial_limit(store: Store) -> None:
    org = await seed_org(store)
    real = make_call(org.id, status=CallStatus.IN_PROGRESS)
    test = make_call(org.id, status=CallStatus.IN_PROGRESS)
    test.test_run_id = "run_1"
    await insert_call(store, real)
    await insert_call(store, test)
    async with store.transaction() as tx:
        assert await tx.count_active_calls("organization_id", org.id) == 1
