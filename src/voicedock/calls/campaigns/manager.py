"""``CampaignManager``: a campaign's life as the API and its calls change it.

Creating stores the campaign (``running``) with its contacts and resolved assistant; pause,
resume and cancel change its status in one transaction each (a cancel ends every pending
contact ``cancelled``). As a ``CallObserver`` it settles a contact in the very transaction that
ends its call: the call's outcome is final, or the contact waits for its retry. Each change is
published through ``CampaignEvents`` (the webhooks) in the same transaction.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from voicedock.calls.assistants.resolve import UNKNOWN_VERSION, ResolvedAssistant
from voicedock.calls.assistants.squads import resolve_chosen
from voicedock.calls.campaigns.request import CampaignRequest, ContactRequest
from voicedock.calls.campaigns.retries import outcome_of, retry_at
from voicedock.calls.engine.placement import PBX_UNAVAILABLE
from voicedock.calls.outbound.new_call import check_number_choice
from voicedock.calls.policy import DestinationRefused, check_destination
from voicedock.config import Settings
from voicedock.domain.campaigns import (
    CANCELLED,
    Campaign,
    CampaignContact,
    CampaignStatus,
    CampaignVersion,
    ContactState,
)
from voicedock.domain.records import Call, CallEvent, CallMessage, utcnow
from voicedock.domain.traffic_split import each_version_once
from voicedock.egress.settings import egress_policy
from voicedock.errors import BadRequest, Conflict, NotFound, Unprocessable
from voicedock.organizations.trunk_access import TrunkAccess
from voicedock.store.base import Store, Transaction

CAMPAIGN_NOT_FOUND = "Campaign not found"
# A contact whose call the PBX could not take (its link down) is dialed again after this long.
PBX_WAIT = timedelta(seconds=5)


class CampaignEvents(Protocol):
    """Where campaign changes are published, inside the transaction that makes them."""

    async def campaign_changed(self, tx: Transaction, campaign: Campaign, at: datetime) -> None:
        """The campaign's status is new (``running`` when it started)."""
        ...

    async def contact_done(
        self, tx: Transaction, campaign: Campaign, contact: CampaignContact, at: datetime
    ) -> None:
        """The contact's ``outcome`` is final."""
        ...


class NoCampaignEvents:
    async def campaign_changed(self, tx: Transaction, campaign: Campaign, at: datetime) -> None:
        return None

    async def contact_done(
        self, tx: Transaction, campaign: Campaign, contact: CampaignContact, at: datetime
    ) -> None:
        return None


def new_campaign_id() -> str:
    return f"cmp_{uuid.uuid4().hex}"


def new_contacts(
    campaign_id: str, contacts: Sequence[ContactRequest], now: datetime
) -> list[CampaignContact]:
    return [
        CampaignContact(
            id=f"cct_{uuid.uuid4().hex}",
            campaign_id=campaign_id,
            destination=c.destination,
            name=c.name,
            timezone=c.timezone,
            variables=dict(c.variables),
            next_attempt_at=now,
            updated_at=now,
        )
        for c in contacts
    ]


class CampaignManager:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
        events: CampaignEvents | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._egress_policy = egress_policy(settings)
        self._now = clock
        self.events: CampaignEvents = events or NoCampaignEvents()

    async def create(self, org_id: str, request: CampaignRequest) -> Campaign:
        self._check_destinations(request.contacts)
        assistant = await self._resolved(org_id, request, None)
        split = await self._split(org_id, request, assistant)
        access = TrunkAccess(self._settings.trunks)
        for number_id in request.number_ids:
            await check_number_choice(self._store, org_id, number_id, access)
        await check_number_choice(self._store, org_id, None, access)
        now = self._now()
        campaign = Campaign(
            id=new_campaign_id(),
            organization_id=org_id,
            name=request.name,
            status=CampaignStatus.RUNNING,
            **assistant.campaign_fields(),
            context=request.assistant.context,
            number_ids=list(request.number_ids),
            max_concurrent=request.max_concurrent,
            ring_timeout_seconds=request.ring_timeout_seconds,
            calling_window=request.calling_window,
            timezone=request.timezone,
            retries=request.retries,
            created_at=now,
            updated_at=now,
            started_at=now,
            split=split,
        )
        async with self._store.transaction() as tx:
            await tx.insert_campaign(campaign, new_contacts(campaign.id, request.contacts, now))
            await self.events.campaign_changed(tx, campaign, now)
        return campaign

    async def _resolved(
        self, org_id: str, request: CampaignRequest, version: int | None
    ) -> ResolvedAssistant:
        """The campaign's assistant resolved once for every contact (``version``: that version
        of it, for a split; none: no callee's version of the assistant's own split)."""
        settings = self._settings
        return await resolve_chosen(
            self._store,
            org_id,
            dataclasses.replace(request.assistant, destination=""),
            settings.speech,
            settings.byok,
            self._egress_policy,
            max_handoffs=settings.calls.max_handoffs,
            version=version,
        )

    async def _split(
        self, org_id: str, request: CampaignRequest, assistant: ResolvedAssistant
    ) -> list[CampaignVersion] | None:
        """The versions the campaign's calls are split to, each resolved now: those the
        request names, else those of its saved assistant's own split (none for a squad or a
        configuration of its own)."""
        shares = request.traffic_split
        if assistant.assistant_id is None or assistant.squad is not None:
            if shares is not None:
                raise BadRequest(
                    "traffic_split: only a campaign of a saved assistant (assistant_id, not "
                    "a squad) splits its calls between versions"
                )
            return None
        if shares is None:
            saved = await self._store.get_assistant(org_id, assistant.assistant_id)
            shares = None if saved is None else tuple(saved.traffic_split or ()) or None
        if shares is None:
            return None
        each_version_once([share.version for share in shares], "traffic_split")
        split: list[CampaignVersion] = []
        for share in shares:
            try:
                version = await self._resolved(org_id, request, share.version)
            except Unprocessable as exc:
                if exc.error != UNKNOWN_VERSION:
                    raise
                raise Unprocessable(
                    f"traffic_split: the assistant has no version {share.version}",
                    error=UNKNOWN_VERSION,
                ) from None
            split.append(
                CampaignVersion(
                    version=share.version,
                    weight=share.weight,
                    agent_name=version.name,
                    business_name=version.business_name,
                    assistant_config=version.config,
                )
            )
        return split

    async def add_contacts(
        self, org_id: str, campaign_id: str, contacts: Sequence[ContactRequest]
    ) -> int:
        self._check_destinations(contacts)
        now = self._now()
        async with self._store.transaction() as tx:
            campaign = await self._for_update(tx, org_id, campaign_id)
            if campaign.status.terminal:
                raise Conflict(f"the campaign is {campaign.status}: it takes no more contacts")
            await tx.insert_contacts(new_contacts(campaign.id, contacts, now))
        return len(contacts)

    def _check_destinations(self, contacts: Sequence[ContactRequest]) -> None:
        for i, contact in enumerate(contacts):
            try:
                check_destination(contact.destination, self._settings.policy)
            except DestinationRefused as exc:
                raise DestinationRefused(f"contacts[{i}]: {exc.message}", exc.reason) from None
            except BadRequest as exc:  # a number that cannot exist
                raise BadRequest(f"contacts[{i}].{exc.message}", error=exc.error) from None

    async def pause(self, org_id: str, campaign_id: str) -> Campaign:
        return await self._move(org_id, campaign_id, CampaignStatus.PAUSED)

    async def resume(self, org_id: str, campaign_id: str) -> Campaign:
        return await self._move(org_id, campaign_id, CampaignStatus.RUNNING)

    async def cancel(self, org_id: str, campaign_id: str) -> Campaign:
        return await self._move(org_id, campaign_id, CampaignStatus.CANCELLED)

    async def _move(self, org_id: str, campaign_id: str, status: CampaignStatus) -> Campaign:
        now = self._now()
        async with self._store.transaction() as tx:
            campaign = await self._for_update(tx, org_id, campaign_id)
            if campaign.status is status:
                return campaign
            if campaign.status.terminal:
                raise Conflict(f"the campaign is {campaign.status} already")
            campaign.status = status
            campaign.updated_at = now
            if status is CampaignStatus.CANCELLED:
                campaign.finished_at = now
                await tx.end_pending_contacts(campaign.id, CANCELLED, now)
            await tx.update_campaign_status(campaign)
            await self.events.campaign_changed(tx, campaign, now)
        return campaign

    async def finish_if_done(self, tx: Transaction, campaign: Campaign, now: datetime) -> bool:
        """A running campaign none of whose contacts is open any more is finished (in ``tx``,
        which holds the campaign's row lock)."""
        if campaign.status is not CampaignStatus.RUNNING:
            return False
        if await tx.count_open_contacts(campaign.id):
            return False
        campaign.status = CampaignStatus.FINISHED
        campaign.updated_at = campaign.finished_at = now
        await tx.update_campaign_status(campaign)
        await self.events.campaign_changed(tx, campaign, now)
        return True

    async def _for_update(self, tx: Transaction, org_id: str, campaign_id: str) -> Campaign:
        campaign = await tx.get_campaign_for_update(org_id, campaign_id)
        if campaign is None:
            raise NotFound("no campaign with this id", error=CAMPAIGN_NOT_FOUND)
        return campaign

    # -- CallObserver: a contact's call ended --------------------------------------------

    async def on_event(self, tx: Transaction, call: Call, event: CallEvent) -> None:
        if call.campaign_id is None or event.type != "status" or not call.status.terminal:
            return
        contact = await tx.contact_of_call(call.id)
        if contact is None or contact.state is not ContactState.CALLING:
            return  # settled already (an event applied twice)
        # Read in ``tx``: a read on another connection while it is open may wait for ever
        # (every connection of the pool held by calls ending the same way).
        campaign = await tx.get_campaign(None, call.campaign_id)
        if campaign is None:
            raise NotFound("no campaign with this id", error=CAMPAIGN_NOT_FOUND)
        now = event.created_at
        outcome = outcome_of(call)
        again = retry_at(campaign.retries, outcome, contact.attempts, now)
        if outcome == PBX_UNAVAILABLE:  # never dialed: not an attempt, tried again shortly
            contact.attempts -= 1
            again = now + PBX_WAIT
        if campaign.status is CampaignStatus.CANCELLED:
            again = None
        contact.outcome = outcome
        contact.updated_at = now
        if again is None:
            contact.state = ContactState.DONE
        else:
            contact.state = ContactState.PENDING
            contact.next_attempt_at = again
        await tx.update_contact(contact)
        if contact.state is ContactState.DONE:
            await self.events.contact_done(tx, campaign, contact, now)

    async def on_report(self, tx: Transaction, call: Call, messages: Sequence[CallMessage]) -> None:
        return None


__all__ = ["CampaignEvents", "CampaignManager", "NoCampaignEvents", "new_campaign_id"]
