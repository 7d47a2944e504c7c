"""``test-run.completed``: a test suite's run ended (passed, failed or error), enqueued in the
transaction that stores its end, for the organization's endpoints that want it.

    {"type": "test-run.completed", "test_run_id": "...", "timestamp": "...Z",
     "data": {"suite_id": "...", "status": "failed", "assistant_id": "...",
              "scenarios": 3, "passed": 2, "failed": 1, "errors": 0}}
"""

from __future__ import annotations

from collections.abc import Callable

from voicedock.domain.rehearsal import Outcome, SuiteRun
from voicedock.domain.timestamps import iso
from voicedock.domain.webhooks import EventType
from voicedock.store.base import Transaction
from voicedock.webhooks.events import RunEventPayload
from voicedock.webhooks.outbox import enqueue_event


def run_completed(run: SuiteRun) -> RunEventPayload:
    outcomes = [result.outcome for result in run.results]
    return {
        "type": str(EventType.TEST_RUN_COMPLETED),
        "test_run_id": run.id,
        "timestamp": iso(run.ended_at or run.created_at),
        "data": {
            "suite_id": run.suite_id,
            "status": run.status.value,
            "assistant_id": run.assistant_id,
            "scenarios": len(outcomes),
            "passed": outcomes.count(Outcome.PASSED),
            "failed": outcomes.count(Outcome.FAILED),
            "errors": outcomes.count(Outcome.ERROR),
        },
    }


class RunWebhooks:
    """The ``RunEvents`` of ``calls.rehearsal.runs``, as webhooks."""

    def __init__(self, on_enqueued: Callable[[], None] = lambda: None) -> None:
        self._on_enqueued = on_enqueued

    async def run_completed(self, tx: Transaction, run: SuiteRun) -> None:
        endpoints = await tx.list_webhook_endpoints(run.organization_id)
        kind = str(EventType.TEST_RUN_COMPLETED)
        chosen = [e.id for e in endpoints if e.wants(run.assistant_id, kind)]
        if chosen:
            await enqueue_event(tx, chosen, run_completed(run))
            self._on_enqueued()


__all__ = ["RunWebhooks", "run_completed"]
