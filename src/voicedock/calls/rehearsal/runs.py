"""``Rehearsals``: a test suite's runs on this node (``POST /test-suites/{id}/runs``).

A run is asked for with the assistant it tests (the suite's, another saved one, or a draft
configuration), resolved as a call's would be (404/400/422 at once); it is stored ``queued``
and answered, then its scenarios are called in the background, each a test call
(``SimulatedCalls``) judged as it ends (``judging.py``; a judge expectation graded by the
judge model, ``grading.py``) and stored with the run. Test calls
run at most ``[rehearsal] max_concurrent`` at once on the node, whatever the runs, the slots
handed to the organizations waiting in turn (``slots.py``); an organization has at most
``max_runs_per_organization`` runs waiting or running, counted in the database across the
nodes and workers sharing it (429), and keeps its ``max_stored_runs_per_organization`` newest
finished ones: when a run ends, older finished ones beyond them are deleted."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from voicedock.aio import Supervisor
from voicedock.calls.assistants.resolve import ChosenAssistant, ResolvedAssistant, resolve_assistant
from voicedock.calls.rehearsal.grading import grades
from voicedock.calls.rehearsal.judging import judged
from voicedock.calls.rehearsal.models import ChatModel
from voicedock.calls.rehearsal.slots import FairSlots
from voicedock.calls.rehearsal.test_calls import CallSetup, Observed, SimulatedCalls
from voicedock.config import Settings
from voicedock.domain.json import JsonObject
from voicedock.domain.records import utcnow
from voicedock.domain.rehearsal import (
    Outcome,
    RunStatus,
    Scenario,
    ScenarioResult,
    Suite,
    SuiteRun,
)
from voicedock.egress import EgressPolicy
from voicedock.errors import BadRequest, Forbidden, RateLimited, StoreError
from voicedock.store.base import Store, Transaction

log = logging.getLogger("voicedock.calls.rehearsal")


class RunEvents(Protocol):
    """Told in the transaction that stores a run's end (``webhooks/test_run_events.py``)."""

    async def run_completed(self, tx: Transaction, run: SuiteRun) -> None: ...


STOPPED = "the node stopped during the run"
NO_TEST_CALLS = "this node places no test calls (they need a PBX that carries media)"
# A run waiting or running that was asked for longer ago than this no longer counts against
# its organization's bound: its node stopped without ending it (it crashed, lost power).
OPEN_RUN_HORIZON = timedelta(hours=12)
TRIM_BATCH = 500  # finished runs deleted per statement beyond an organization's bound


class Rehearsals:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        calls: SimulatedCalls | None,
        *,
        egress: EgressPolicy | None = None,
        events: RunEvents | None = None,
        judge: ChatModel | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """``calls``: where the test calls are placed (None: this node places none, and a
        run ends ``error`` saying so); ``events``: told when a run ends; ``judge``: grades
        judge expectations (None: they fail saying the node has none)."""
        self._store = store
        self._settings = settings
        self._calls = calls
        self._egress = egress
        self._events = events
        self._judge = judge
        self._now = clock
        self._slots = FairSlots(settings.rehearsal.max_concurrent)
        self._tasks = Supervisor("rehearsals", log)

    async def start(self) -> None:
        await self._tasks.start()

    async def aclose(self) -> None:
        await self._tasks.aclose()

    async def ask(
        self,
        organization_id: str,
        suite: Suite,
        *,
        assistant_id: str | None = None,
        assistant: JsonObject | None = None,
        assistant_version: int | None = None,
    ) -> SuiteRun:
        """A run of ``suite``, stored ``queued`` and started in the background; with
        ``assistant_version``, that version of the saved assistant (a draft's included)."""
        bounds = self._settings.rehearsal
        if not bounds.enabled:
            raise Forbidden("test runs are off on this node ([rehearsal] enabled)")
        if assistant is None and assistant_id is None:
            assistant_id = suite.assistant_id
        if assistant is None and assistant_id is None:
            raise BadRequest(
                "assistant_id or assistant is required (the suite names none)",
                error="No assistant",
            )
        choice = ChosenAssistant(assistant_id=assistant_id, assistant=assistant)
        resolved = await resolve_assistant(
            self._store,
            organization_id,
            choice,
            self._settings.speech,
            self._settings.byok,
            self._egress,
            version=assistant_version,
        )
        run = SuiteRun(
            id=str(uuid.uuid4()),
            organization_id=organization_id,
            suite_id=suite.id,
            status=RunStatus.QUEUED,
            assistant_id=assistant_id,
            assistant=assistant,
            assistant_version=assistant_version,
            created_at=self._now(),
        )
        async with self._store.transaction() as tx:
            await tx.lock_organization(organization_id)  # no other node counts meanwhile
            since = run.created_at - OPEN_RUN_HORIZON
            if await tx.count_open_suite_runs(organization_id, since) >= (
                bounds.max_runs_per_organization
            ):
                raise RateLimited(
                    f"at most {bounds.max_runs_per_organization} test runs at once",
                    retry_after_seconds=10,
                )
            await tx.insert_suite_run(run)
        self._tasks.spawn(self._run(run, suite.scenarios, resolved), name=f"run-{run.id}")
        return run

    async def _run(
        self, run: SuiteRun, scenarios: Sequence[Scenario], assistant: ResolvedAssistant
    ) -> None:
        try:
            await self._carried_out(run, scenarios, assistant)
        except asyncio.CancelledError:  # the node stops: the run is not left running
            run.status, run.error, run.ended_at = RunStatus.ERROR, STOPPED, self._now()
            await self._save(run, ended=True)
            raise

    async def _carried_out(
        self, run: SuiteRun, scenarios: Sequence[Scenario], assistant: ResolvedAssistant
    ) -> None:
        """Its scenarios called (within the node's bound) and judged, its end stored."""
        run.status, run.started_at = RunStatus.RUNNING, self._now()
        await self._save(run)
        results: list[ScenarioResult | None]
        if self._calls is None:
            run.error = NO_TEST_CALLS
            results = [judged(s, Observed(error=NO_TEST_CALLS)) for s in scenarios]
        else:
            results = [None] * len(scenarios)
            async with asyncio.TaskGroup() as group:
                for index, scenario in enumerate(scenarios):
                    setup = CallSetup(run.id, run.organization_id, scenario, assistant)
                    group.create_task(self._scenario(run, results, index, setup))
        run.results = [r for r in results if r is not None]
        run.status = _status(run)
        run.ended_at = self._now()
        await self._save(run, ended=True)

    async def _scenario(
        self,
        run: SuiteRun,
        results: list[ScenarioResult | None],
        index: int,
        setup: CallSetup,
    ) -> None:
        """One scenario's test call, once a slot is free, judged and stored with the run."""
        calls = self._calls
        assert calls is not None
        async with self._slots.held(run.organization_id):
            began = time.monotonic()
            try:
                observed = await calls.call(setup)
            except Exception as exc:  # one scenario's failure is its own result
                log.warning("test call failed: %s", type(exc).__name__, exc_info=exc)
                elapsed = int((time.monotonic() - began) * 1000)
                why = f"the test call failed ({_cause(exc)})"
                observed = Observed(error=why, duration_ms=elapsed)
        graded = await grades(self._judge, setup.scenario, observed)
        # Off the event loop: a said expectation's regex may take a while on a long transcript.
        results[index] = await asyncio.to_thread(judged, setup.scenario, observed, graded)
        run.results = [r for r in results if r is not None]
        await self._save(run)

    async def _save(self, run: SuiteRun, *, ended: bool = False) -> None:
        try:
            async with self._store.transaction() as tx:
                await tx.update_suite_run(run)
                if ended:
                    keep = self._settings.rehearsal.max_stored_runs_per_organization
                    await tx.delete_finished_suite_runs_beyond(
                        run.organization_id, keep, TRIM_BATCH
                    )
                if ended and self._events is not None:
                    await self._events.run_completed(tx, run)
        except StoreError as exc:  # the run goes on; its next write tries again
            log.warning("test run not saved: %s", type(exc).__name__)


def _cause(exc: BaseException) -> BaseException:
    """What failed: a task group's first error rather than the group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _status(run: SuiteRun) -> RunStatus:
    outcomes = {result.outcome for result in run.results}
    if run.error is not None or Outcome.ERROR in outcomes:
        return RunStatus.ERROR
    if Outcome.FAILED in outcomes:
        return RunStatus.FAILED
    return RunStatus.PASSED


__all__ = ["NO_TEST_CALLS", "Rehearsals"]
