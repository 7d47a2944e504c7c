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

from datetime import datetime

from voicedock.domain.campaigns import Campaign, CampaignContact
from voicedock.domain.timestamps import iso
from voicedock.domain.webhooks import EventType
from voicedock.store.base import Transaction
from voicedock.webhooks.events import CampaignEventPayload
from voicedock.webhooks.outbox import OrganizationWebhooks


def campaign_update(campaign: Campaign, at: datetime) -> CampaignEventPayload:
    return {
        "type": str(EventType.CAMPAIGN_UPDATE),
        "campaign_id": campaign.id,
        "timestamp": iso(at),
        "data": {"status": campaign.status.value, "name": campaign.name},
    }


def contact_update(
    campaign: Campaign, contact: CampaignContact, at: datetime
) -> CampaignEventPayload:
    return {
        "type": str(EventType.CAMPAIGN_CONTACT_UPDATE),
        "campaign_id": campaign.id,
        "call_id": contact.call_id,
        "timestamp": iso(at),
        "data": {
            "contact_id": contact.id,
            "destination": contact.destination,
            "outcome": contact.outcome,
            "attempts": contact.attempts,
        },
    }


class CampaignWebhooks(OrganizationWebhooks):
    """The ``CampaignEvents`` of ``calls.campaigns.manager``, as webhooks."""

    async def campaign_changed(self, tx: Transaction, campaign: Campaign, at: datetime) -> None:
        payload = campaign_update(campaign, at)
        await self._publish(tx, campaign.organization_id, campaign.assistant_id, payload)

    async def contact_done(
        self, tx: Transaction, campaign: Campaign, contact: CampaignContact, at: datetime
    ) -> None:
        payload = contact_update(campaign, contact, at)
        await self._publish(tx, campaign.organization_id, campaign.assistant_id, payload)


__all__ = ["CampaignWebhooks", "campaign_update", "contact_update"]
