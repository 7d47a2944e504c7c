"""``phone-number-health``: one of an organization's caller numbers was flagged unhealthy (its
answer rate fell under the operator's floor: carriers may be labelling it spam) or is healthy
again (its outcomes recovered, or its rest is over); enqueued once per change, in the
transaction that made it (``calls/outbound/number_health.py``), for the organization's endpoints
that want it (those not scoped to one assistant).

    {"type": "phone-number-health", "organization_id": "...", "timestamp": "...Z",
     "data": {"phone_number_id": "...", "number": "+3185...", "healthy": false,
              "flagged_at": "...Z", "resting_until": "...Z" | null,
              "window_hours": 24, "calls": 12, "answered": 0, "answer_rate": 0.0}}
"""

from __future__ import annotations

from voicedock.domain.json import JsonObject
from voicedock.domain.records import PhoneNumber
from voicedock.domain.timestamps import iso, utcnow
from voicedock.domain.webhooks import EventType
from voicedock.store.base import Transaction
from voicedock.webhooks.events import OrganizationEventPayload
from voicedock.webhooks.outbox import OrganizationWebhooks


def number_health(number: PhoneNumber) -> OrganizationEventPayload:
    health = number.health
    data: JsonObject = {
        "phone_number_id": number.id,
        "number": number.number,  # the organization's own caller number
        "healthy": number.flagged_at is None,
        "flagged_at": None if number.flagged_at is None else iso(number.flagged_at),
        "resting_until": None if number.resting_until is None else iso(number.resting_until),
    }
    if health is not None:
        data |= {
            "window_hours": health.window_hours,
            "calls": health.outcomes.calls,
            "answered": health.outcomes.answered,
            "answer_rate": health.outcomes.answer_rate(),
        }
    return {
        "type": str(EventType.PHONE_NUMBER_HEALTH),
        "organization_id": number.organization_id,
        "timestamp": iso(health.as_of if health is not None else utcnow()),
        "data": data,
    }


class NumberHealthWebhooks(OrganizationWebhooks):
    """The ``NumberHealthAlerts`` of ``calls.outbound.number_health``, as webhooks."""

    async def number_health(self, tx: Transaction, number: PhoneNumber) -> None:
        await self._publish(tx, number.organization_id, None, number_health(number))


__all__ = ["NumberHealthWebhooks", "number_health"]
