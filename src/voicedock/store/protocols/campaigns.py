"""Campaigns (``calls/campaigns/``), their contacts, claimed one at a time by the dialers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from voicedock.domain.campaigns import (
    Campaign,
    CampaignContact,
    CampaignProgress,
    ContactState,
)


class CampaignWrites(Protocol):
    async def insert_campaign(
        self, campaign: Campaign, contacts: Sequence[CampaignContact]
    ) -> Campaign: ...
    async def insert_contacts(self, contacts: Sequence[CampaignContact]) -> None: ...
    async def get_campaign_for_update(
        self, organization_id: str | None, campaign_id: str
    ) -> Campaign | None: ...
    async def get_campaign(self, organization_id: str | None, campaign_id: str) -> Campaign | None:
        """Read in the transaction, not locked."""
        ...

    async def update_campaign_status(self, campaign: Campaign) -> None: ...
    async def claim_contact(self, campaign_id: str, now: datetime) -> CampaignContact | None:
        """The campaign's pending contact due first, locked (skipped by other claimers)."""
        ...

    async def contact_of_call(self, call_id: str) -> CampaignContact | None: ...
    async def update_contact(self, contact: CampaignContact) -> None: ...
    async def end_pending_contacts(self, campaign_id: str, outcome: str, now: datetime) -> int: ...
    async def count_open_contacts(self, campaign_id: str) -> int: ...


class CampaignReads(Protocol):
    async def get_campaign(
        self, organization_id: str | None, campaign_id: str
    ) -> Campaign | None: ...
    async def list_campaigns(
        self, organization_id: str, limit: int, offset: int
    ) -> tuple[list[Campaign], int]: ...
    async def list_running_campaigns(self) -> list[Campaign]: ...
    async def campaign_progress(self, campaign_id: str) -> CampaignProgress: ...
    async def list_campaign_contacts(
        self, campaign_id: str, state: ContactState | None, limit: int, offset: int
    ) -> tuple[list[CampaignContact], int]: ...


__all__ = ["CampaignReads", "CampaignWrites"]
