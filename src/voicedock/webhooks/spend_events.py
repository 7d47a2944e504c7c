"""``spend-threshold``: an organization's costs this month reached the warning threshold of its
monthly spending limit, or the limit itself (docs/billing.md); enqueued once per month and
threshold, in the transaction that rated the call that reached it, for the organization's
endpoints that want it (those not scoped to one assistant).

    {"type": "spend-threshold", "organization_id": "...", "timestamp": "...Z",
     "data": {"month": "2026-11", "threshold_percent": 80, "spent": "41.20",
              "limit": "50.00", "currency": "EUR", "limit_reached": false}}
"""

from __future__ import annotations

from voicedock.domain.billing import SpendAlert
from voicedock.domain.timestamps import iso
from voicedock.domain.webhooks import EventType
from voicedock.store.base import Transaction
from voicedock.webhooks.events import OrganizationEventPayload
from voicedock.webhooks.outbox import OrganizationWebhooks

LIMIT_PERCENT = 100


def spend_threshold(alert: SpendAlert) -> OrganizationEventPayload:
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


class SpendWebhooks(OrganizationWebhooks):
    """The ``SpendAlerts`` of ``organizations.billing``, as webhooks."""

    async def spend_alert(self, tx: Transaction, alert: SpendAlert) -> None:
        await self._publish(tx, alert.organization_id, None, spend_threshold(alert))


__all__ = ["SpendWebhooks", "spend_threshold"]
