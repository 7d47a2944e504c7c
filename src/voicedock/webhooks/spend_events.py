"""``spend-threshold``: an organization's costs this month reached the warning threshold of its
monthly spending limit, or the limit itself (docs/billing.md); enqueued once per month and
threshold, in the transaction that rated the call that reached it, for the organization's
endpoints that want it (those not scoped to one assistant).

    {"type": "spend-threshold", "organization_id": "...", "timestamp": "...Z",
     "data": {"month": "2026-11", "threshold_percent": 80, "spent": "41.20",
              "limit": "50.00", "currency": "EUR", "limit_reached": false}}
"""

from __future__ import annotations

from collections.abc import Callable

from voicedock.domain.billing import SpendAlert
from voicedock.domain.timestamps import iso
from voicedock.domain.webhooks import EventType
from voicedock.store.base import Transaction
from voicedock.webhooks.events import SpendEventPayload
from voicedock.webhooks.outbox import enqueue_event

LIMIT_PERCENT = 100


def spend_threshold(alert: SpendAlert) -> SpendEventPayload:
    return {
        "type": str(EventType.SPEND_THRESHOLD),
        "organization_id": alert.organization_id,
        "timestamp": iso(alert.at),
        "data": {
            "month": alert.month,
            "threshold_percent": alert.threshold,
            "spent": alert.spent,
            "limit": alert.limit,
            "currency": alert.currency,
            "limit_reached": alert.threshold >= LIMIT_PERCENT,
        },
    }


class SpendWebhooks:
    """The ``SpendAlerts`` of ``calls.billing``, as webhooks."""

    def __init__(self, on_enqueued: Callable[[], None] = lambda: None) -> None:
        self._on_enqueued = on_enqueued

    async def spend_alert(self, tx: Transaction, alert: SpendAlert) -> None:
        endpoints = await tx.list_webhook_endpoints(alert.organization_id)
        kind = str(EventType.SPEND_THRESHOLD)
        chosen = [e.id for e in endpoints if e.wants(None, kind)]
        if chosen:
            await enqueue_event(tx, chosen, spend_threshold(alert))
            self._on_enqueued()


__all__ = ["SpendWebhooks", "spend_threshold"]
