"""The node's schema workers (``pipeline/analysis/schema_checks.py``): real worker processes, a real
slow check within the schema limits (``fakes.hostile_schemas``: minutes of CPU), and what each
organization gets meanwhile."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fakes.hostile_schemas import SLOW_ANSWER, SLOW_SCHEMA, analysis_answer
from voicedock.domain import tenant_schemas
from voicedock.domain.tenant_schemas import check_tenant_schema
from voicedock.pipeline.analysis.schema_checks import (
    BUSY,
    BUSY_ORGANIZATION,
    CLOSING,
    FAILED,
    TOO_LONG,
    WAITED,
    SchemaChecks,
)

pytestmark = pytest.mark.unit

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"day": {"type": "string"}},
    "required": ["day"],
}


@pytest.fixture
async def checks() -> AsyncIterator[SchemaChecks]:
    # A worker runs at the lowest CPU priority: on a loaded machine its start may take longer
    # than a node's wait for one (tests of that wait set it themselves).
    pool = SchemaChecks(deadline_s=60.0, max_wait_s=60.0)
    try:
        yield pool
    finally:
        await pool.aclose()


async def until(condition: Any, within: float = 60.0) -> None:
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.02)


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def test_the_slow_pair_is_within_the_limits() -> None:
    check_tenant_schema(SLOW_SCHEMA, "structured_data_schema")


async def test_a_check_runs_in_a_worker_process_at_the_lowest_priority_without_the_settings(
    checks: SchemaChecks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICEDOCK_SPEECH__OPENAI_API_KEY", "sk-operator-secret")
    assert await checks.check("acme", SCHEMA, analysis_answer({"day": "Monday"})) is None
    assert (
        await checks.check("acme", SCHEMA, analysis_answer({"day": 1}))
        == "day: 1 is not of type 'string'"
    )
    await until(lambda: len(checks.worker_pids()) == 2)  # both kept warm
    pids = checks.worker_pids()
    assert os.getpid() not in pids
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat").read_text()
        assert int(stat.rsplit(")", 1)[1].split()[16]) == 19  # nice
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert b"VOICEDOCK" not in environ


async def test_what_grows_with_the_answer_is_done_in_the_worker_not_on_the_event_loop(
    checks: SchemaChecks, monkeypatch: pytest.MonkeyPatch
) -> None:
    def here(*_args: object) -> None:
        raise AssertionError("the answer was measured in the service's process")

    monkeypatch.setattr(tenant_schemas, "refusal", here)
    monkeypatch.setattr(tenant_schemas, "_depth", here)
    monkeypatch.setattr(tenant_schemas, "validation_error", here)
    deep: object = 1
    for _ in range(40):
        deep = [deep]
    verdict = await checks.check("acme", SCHEMA, analysis_answer({"day": "x", "more": deep}))
    assert verdict == "the structured data is nested deeper than 32 levels"
    verdict = await checks.check("acme", SCHEMA, analysis_answer({"day": "x" * 70_000}))
    assert verdict == "the structured data is larger than 65536 bytes"


async def test_a_refused_schema_costs_no_worker(checks: SchemaChecks) -> None:
    stored = {"type": "object", "properties": {"c": {"pattern": "^(a+)+$"}}}
    verdict = await checks.check("acme", stored, analysis_answer({"c": "a" * 40}))
    assert str(verdict).startswith("the structured data schema is refused")
    assert checks.stats.started == 0
    assert checks.worker_pids() == []


async def test_a_check_past_its_deadline_is_killed_and_its_worker_replaced() -> None:
    checks = SchemaChecks(workers=1, deadline_s=1.0)
    try:
        assert await checks.check("acme", SCHEMA, analysis_answer({"day": "Monday"})) is None
        (first,) = checks.worker_pids()
        assert await checks.check("acme", SLOW_SCHEMA, analysis_answer(SLOW_ANSWER)) == TOO_LONG
        assert checks.stats.timed_out == 1
        assert not alive(first)
        assert await checks.check("acme", SCHEMA, analysis_answer({"day": "Monday"})) is None
        (second,) = checks.worker_pids()
        assert second != first
    finally:
        await checks.aclose()


async def test_a_lower_deadline_ends_a_running_check_already_past_it(
    checks: SchemaChecks,
) -> None:
    slow = asyncio.create_task(checks.check("evil", SLOW_SCHEMA, analysis_answer(SLOW_ANSWER)))
    await until(lambda: checks.running_in("evil"))
    (worker,) = checks.running_in("evil")
    await asyncio.sleep(0.5)
    checks.set_deadline(600.0)  # later than it was: the check goes on
    await asyncio.sleep(0.2)
    assert not slow.done()
    assert checks.running_in("evil") == [worker]
    with pytest.raises(ValueError, match="positive"):
        checks.set_deadline(0.0)
    checks.set_deadline(0.3)  # counted from the check's start: past already
    async with asyncio.timeout(10):
        assert await slow == TOO_LONG
    assert checks.deadline_s == 0.3
    assert checks.stats.timed_out == 1
    assert checks.slow("evil")
    assert worker not in checks.worker_pids()
    assert not alive(worker)


async def test_a_hostile_organization_never_holds_another_organizations_check(
    checks: SchemaChecks,
) -> None:
    hostile = [
        asyncio.create_task(checks.check("evil", SLOW_SCHEMA, analysis_answer(SLOW_ANSWER)))
        for _ in range(4)
    ]
    try:
        await until(lambda: checks.running("evil") == 1)
        # evil's checks wait behind its own; another organization's goes to the free worker.
        assert await checks.check("acme", SCHEMA, analysis_answer({"day": "Monday"})) is None
        assert checks.running("evil") == 1
        assert not any(task.done() for task in hostile)
    finally:
        await checks.aclose()
    assert [await task for task in hostile] == [CLOSING] * 4


async def test_organizations_whose_checks_reached_the_deadline_share_one_worker() -> None:
    checks = SchemaChecks(deadline_s=1.0)
    try:
        first = [
            checks.check(org, SLOW_SCHEMA, analysis_answer(SLOW_ANSWER))
            for org in ("evil-1", "evil-2")
        ]
        assert await asyncio.gather(*first) == [TOO_LONG, TOO_LONG]  # side by side, at first
        assert checks.slow("evil-1")
        assert checks.slow("evil-2")
        assert not checks.slow("acme")
        checks.deadline_s = 60.0  # the next ones run until the test is done with them
        again = [
            asyncio.create_task(checks.check(org, SLOW_SCHEMA, analysis_answer(SLOW_ANSWER)))
            for org in ("evil-1", "evil-2")
        ]
        await until(lambda: checks.running("evil-1") + checks.running("evil-2") == 1)
        await until(lambda: len(checks.worker_pids()) == 2)
        # One worker for the slow organizations together; the other serves everyone else.
        assert await checks.check("acme", SCHEMA, analysis_answer({"day": "Monday"})) is None
        assert checks.running("evil-1") + checks.running("evil-2") == 1
        assert checks.waiting == 1
    finally:
        await checks.aclose()
    assert [await task for task in again] == [CLOSING, CLOSING]


async def test_past_the_queue_bounds_a_check_is_not_made_and_says_why() -> None:
    checks = SchemaChecks(workers=1, deadline_s=60.0, waiting_per_organization=2, max_waiting=3)
    try:
        running = asyncio.create_task(
            checks.check("evil", SLOW_SCHEMA, analysis_answer(SLOW_ANSWER))
        )
        await until(lambda: checks.running("evil") == 1)
        waiting = [
            asyncio.create_task(checks.check("evil", SCHEMA, analysis_answer({"day": "Monday"})))
            for _ in "ab"
        ]
        await until(lambda: checks.waiting == 2)
        assert (
            await checks.check("evil", SCHEMA, analysis_answer({"day": "Monday"}))
            == BUSY_ORGANIZATION
        )
        waiting.append(
            asyncio.create_task(checks.check("acme", SCHEMA, analysis_answer({"day": "Monday"})))
        )
        await until(lambda: checks.waiting == 3)
        assert await checks.check("globex", SCHEMA, analysis_answer({"day": "Monday"})) == BUSY
        assert checks.stats.refused == 2
    finally:
        await checks.aclose()
    assert await running == CLOSING
    assert [await task for task in waiting] == [CLOSING] * 3


async def test_a_check_that_waits_too_long_for_a_worker_is_not_made() -> None:
    checks = SchemaChecks(workers=1, deadline_s=60.0)
    try:
        running = asyncio.create_task(
            checks.check("evil", SLOW_SCHEMA, analysis_answer(SLOW_ANSWER))
        )
        await until(lambda: checks.running("evil") == 1)
        checks.max_wait_s = 0.5  # (not while the worker started: its start may take longer)
        assert await checks.check("acme", SCHEMA, analysis_answer({"day": "Monday"})) == WAITED
        assert checks.stats.waited_out == 1
    finally:
        await checks.aclose()
        await checks.aclose()  # idempotent
    assert await running == CLOSING
    assert await checks.check("acme", SCHEMA, analysis_answer({"day": "Monday"})) == CLOSING


async def test_a_worker_that_dies_is_replaced(checks: SchemaChecks) -> None:
    assert await checks.check("acme", SCHEMA, analysis_answer({"day": "Monday"})) is None
    await until(lambda: len(checks.worker_pids()) == 2)
    killed = set(checks.worker_pids())
    for pid in killed:  # dead while idle: replaced before the next check
        os.kill(pid, signal.SIGKILL)
    await until(lambda: not killed & set(checks.worker_pids()))
    assert await checks.check("acme", SCHEMA, analysis_answer({"day": "Monday"})) is None
    slow = asyncio.create_task(checks.check("evil", SLOW_SCHEMA, analysis_answer(SLOW_ANSWER)))
    await until(lambda: checks.running("evil") == 1)
    before = set(checks.worker_pids())
    for pid in before:  # dead while checking: that check fails, the worker is replaced
        os.kill(pid, signal.SIGKILL)
    assert await slow == FAILED
    assert checks.stats.failed == 1
    # A SIGKILL takes effect when the kernel next runs the process: once the idle one has
    # ended, it is known dead (``SchemaWorker.alive``) and replaced before the next check.
    await until(lambda: all(ended(pid) for pid in before))
    assert await checks.check("acme", SCHEMA, analysis_answer({"day": "Monday"})) is None
    await until(lambda: len(checks.worker_pids()) == 2)
    assert not before & set(checks.worker_pids())


def ended(pid: int) -> bool:
    """The kernel has ended ``pid``: a zombie its parent has not reaped yet, or gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def worker_processes() -> list[int]:
    """This process's children running a schema worker."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == os.getpid() and b"schema_worker" in cmdline:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize("after", [0.0, 0.001, 0.01, 0.05, 0.2])
async def test_closing_while_workers_start_leaves_no_process_behind(after: float) -> None:
    checks = SchemaChecks()
    await checks.start()
    await asyncio.sleep(after)
    await checks.aclose()
    assert worker_processes() == []
