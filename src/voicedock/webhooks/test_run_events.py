"""``test-run.completed``: a test suite's run ended (passed, failed or error), enqueued in the
transaction that stores its end, for the organization's endpoints that want it.

    {"type": "test-run.completed", "test_run_id": "...", "timestamp": "...Z",
     "data": {"suite_id": "...", "status": "failed", "assistant_id": "...",
              "scenarios": 3, "passed": 2, "failed": 1, "errors": 0}}
"""

from __future__ import annotations

from voicedock.domain.rehearsal import Outcome, SuiteRun
from voicedock.domain.timestamps import iso
from voicedock.domain.webhooks import EventType
from voicedock.store.base import Transaction
from voicedock.webhooks.events import RunEventPayload
from voicedock.webhooks.outbox import OrganizationWebhooks


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


class RunWebhooks(OrganizationWebhooks):
    """The ``RunEvents`` of ``calls.rehearsal.runs``, as webhooks."""

    async def run_completed(self, tx: Transaction, run: SuiteRun) -> None:
        await self._publish(tx, run.organization_id, run.assistant_id, run_completed(run))


__all__ = ["RunWebhooks", "run_completed"]
