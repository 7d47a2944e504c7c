"""Campaign webhooks: ``campaign-update`` (the campaign is running, paused, cancelled or
finished) and ``campaign-contact-update`` (a contact's outcome is final), enqueued in the
transaction that makes the change, for the organization's endpoints that want them.

    {"type": "campaign-update", "campaign_id": "cmp_...", "timestamp": "...Z",
     "data": {"status": "paused", "name": "Reminders"}}
    {"type": "campaign-contact-update", "campaign_id": "cmp_...", "call_id": "call-...",
     "timestamp": "...Z", "data": {"contact_id": "cct_...", "destination": "+31...",
     "outcome": "busy", "attempts": 2}}
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from voicedock.domain.campaigns import Campaign, CampaignContact
from voicedock.domain.webhooks import EventType
from voicedock.store.base import Transaction
from voicedock.webhooks.events import CampaignEventPayload, format_timestamp
from voicedock.webhooks.outbox import enqueue_event


def campaign_update(campaign: Campaign, at: datetime) -> CampaignEventPayload:
    return {
        "type": str(EventType.CAMPAIGN_UPDATE),
        "campaign_id": campaign.id,
        "timestamp": format_timestamp(at),
        "data": {"status": campaign.status.value, "name": campaign.name},
    }


def contact_update(
    campaign: Campaign, contact: CampaignContact, at: datetime
) -> CampaignEventPayload:
    return {
        "type": str(EventType.CAMPAIGN_CONTACT_UPDATE),
        "campaign_id": campaign.id,
        "call_id": contact.call_id,
        "timestamp": format_timestamp(at),
        "data": {
            "contact_id": contact.id,
            "destination": contact.destination,
            "outcome": contact.outcome,
            "attempts": contact.attempts,
        },
    }


class CampaignWebhooks:
    """The ``CampaignEvents`` of ``calls.campaigns.manager``, as webhooks."""

    def __init__(self, on_enqueued: Callable[[], None] = lambda: None) -> None:
        self._on_enqueued = on_enqueued

    async def campaign_changed(self, tx: Transaction, campaign: Campaign, at: datetime) -> None:
        await self._publish(tx, campaign, campaign_update(campaign, at))

    async def contact_done(
        self, tx: Transaction, campaign: Campaign, contact: CampaignContact, at: datetime
    ) -> None:
        await self._publish(tx, campaign, contact_update(campaign, contact, at))

    async def _publish(
        self, tx: Transaction, campaign: Campaign, payload: CampaignEventPayload
    ) -> None:
        endpoints = await tx.list_webhook_endpoints(campaign.organization_id)
        chosen = [e.id for e in endpoints if e.wants(campaign.assistant_id, str(payload["type"]))]
        if chosen:
            await enqueue_event(tx, chosen, payload)
            self._on_enqueued()


__all__ = ["CampaignWebhooks", "campaign_update", "contact_update"]
