"""The dialer: each node's loop that turns due contacts of running campaigns, and scheduled
calls whose time has come (``POST /calls/outbound`` with ``scheduled_at``), into calls.

A scheduled call is claimed as a contact is (``SKIP LOCKED``: one node takes it) and admitted
by the same limits in the same transaction, which moves it ``connecting``; one whose
``latest_at`` passed first ends ``schedule-expired`` without being dialed, and one the
operator's configuration refuses now (the destination policy, its caller number and trunk:
``calls/outbound/recheck.py``) ends with the reason, never dialed.

Organizations take turns (``dial_due``): in each pass every organization with due work dials
one call, a scheduled call or a campaign's contact (its scheduled calls and its campaigns take
turns too), so one organization's backlog, held back by its own limits or simply long, never
holds back another organization's due call: it waits for one call of each other organization
ahead of it in the pass, or, come due during a round, for at most ``MAX_DIALS_PER_ROUND`` of
each (a round then ends and the next looks again for due work).

Every call is placed by the engine's one placing function, ``Placement.place``, as a
``POST /calls/outbound`` is: the dialer only says what to claim (a ``CallAsk``). One dial is
one store transaction: lock the campaign row (a pause or a cancel that committed stops it),
claim the contact due first (``SKIP LOCKED``: nodes take different contacts), check its
calling window, the operator's calling hours in the number's local time and the do-not-call
list (``calls/compliance/``), reserve a caller number, pass the dial limits
(``calls/outbound/dial_pacing.py``: the trunk's calls per second and channels, the organization's
and the campaign's calls at once, across every node) and store the call with the contact marked
``calling``. Only after the commit is the PBX asked to originate. A contact whose call would
exceed a limit is left as it was (the transaction rolls back) and the dialer waits as long as
the limit says; nothing is dropped. So does a contact while this node's offline speech is at
capacity (``calls/speech_admission.py``). A crash before the commit leaves the contact pending;
after it, the contact's call is an ordinary call that the node's restart (or another node) ends,
which settles the contact (``CampaignManager.on_event``): never dialed twice at once.
Originates go out while the next contacts are claimed (``MAX_ORIGINATING`` at once): each is
counted by the limits from its admission, so they may overlap.

The clock is injectable: calling windows and retries are decided on the time it gives.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from voicedock.calls.assistants.placeholders import fill
from voicedock.calls.assistants.resolve import ResolvedAssistant
from voicedock.calls.campaigns.manager import CampaignManager
from voicedock.calls.campaigns.window import next_opening, window_of, zone
from voicedock.calls.engine import CallEngine
from voicedock.calls.engine.placement import CallAsk, Originate
from voicedock.calls.outbound.new_call import NewCall
from voicedock.calls.policy import destination_refusal
from voicedock.config import PolicySettings
from voicedock.domain.campaigns import (
    DO_NOT_CALL,
    Campaign,
    CampaignContact,
    CampaignStatus,
    ContactState,
)
from voicedock.domain.ids import new_outbound_call_id
from voicedock.domain.records import Call, CallStatus, Trunk, utcnow
from voicedock.domain.traffic_split import version_for
from voicedock.errors import ApiError, RateLimited, StoreUnavailable
from voicedock.logs import describe
from voicedock.organizations.billing import SPEND_LIMIT_REACHED, spend_refusal
from voicedock.store.base import ScheduledChoice, Store, Transaction
from voicedock.store.errors import TransactionConflict

log = logging.getLogger("voicedock.campaigns")

# How often an idle dialer looks for new work (a new or resumed campaign, a due retry).
IDLE_POLL = timedelta(milliseconds=250)
REFUSED = "refused"  # the outcome of a contact the call policy does not allow
# Originates of this node's dialer on their way to the PBX at once.
MAX_ORIGINATING = 16
# Due scheduled calls held back by a limit (the organization's, a busy trunk) that one round
# steps over to dial those behind them (each organization with due calls tries one at least).
MAX_HELD_BACK = 100
# Calls one organization dials in one round; one that still has work then starts the next
# round at once, which looks again for organizations with due calls.
MAX_DIALS_PER_ROUND = 20


class _Step(enum.Enum):
    DIALED = "dialed"  # a call was placed (or the contact settled): try the next one
    IDLE = "idle"  # nothing due now in this campaign


@dataclasses.dataclass(slots=True)
class _Queue:
    """One organization's due work in a round: its scheduled calls, or one running campaign's
    contacts."""

    organization_id: str
    campaign_id: str | None = None  # None: the organization's scheduled calls
    held: set[str] = dataclasses.field(default_factory=set)  # scheduled calls held back


class _Wait(Exception):
    """A limit was reached: roll the dial back and try again after ``delay``."""

    def __init__(self, delay: timedelta) -> None:
        super().__init__(delay)
        self.delay = delay


class Dialer:
    def __init__(
        self,
        store: Store,
        engine: CallEngine,
        manager: CampaignManager,
        policy: PolicySettings,
        clock: Callable[[], datetime] = utcnow,
        *,
        can_dial: Callable[[], bool] = lambda: True,
        idle_poll: timedelta = IDLE_POLL,
    ) -> None:
        self._store = store
        self._engine = engine
        self._manager = manager
        self._policy = policy
        self._now = clock
        self._idle_poll = idle_poll
        self._can_dial = can_dial  # the PBX can place calls now (its links are up)
        self._wake = asyncio.Event()
        self._originates: asyncio.TaskGroup | None = None
        self._originating = asyncio.Semaphore(MAX_ORIGINATING)

    def wake(self) -> None:
        """Look for work now (a campaign was created or resumed)."""
        self._wake.set()

    async def run(self) -> None:
        """Dial until cancelled (owned by the service's supervisor). Originates go out while
        the next contacts are claimed: up to ``MAX_ORIGINATING`` at once, in a task group of
        this loop's own (each is already counted by the dial limits when it starts)."""
        async with asyncio.TaskGroup() as originates:
            self._originates = originates
            try:
                await self._dial_forever()
            finally:
                self._originates = None

    async def _dial_forever(self) -> None:
        while True:
            try:
                delay = await self.dial_due()
            except StoreUnavailable as exc:
                log.warning("dialer: store unavailable: %s", exc)
                delay = self._idle_poll
            except TransactionConflict as exc:  # rolled back, nothing committed: next round
                log.warning("dialer: a claim gave way to another node's: %s", exc)
                delay = self._idle_poll
            except Exception:  # the next round tries again; the dialer never stops
                log.exception("dialer: a round failed")
                delay = self._idle_poll
            self._wake.clear()
            try:
                async with asyncio.timeout(delay.total_seconds()):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def dial_due(self) -> timedelta:
        """One round: dial the calls due now that the limits admit, the organizations taking
        turns (one call each per pass, at most ``MAX_DIALS_PER_ROUND`` each); how long until
        it is worth looking again (nothing: an organization has work left over). Each dial
        asks first whether the node may dial (``can_dial``): a PBX that goes down or a drain
        that begins during a round stops it, the rest waiting as they were."""
        delay = self._idle_poll
        if not self._can_dial():  # contacts wait for the PBX rather than fail one by one
            return delay
        trunks = {t.name: t for t in await self._store.list_trunks()}
        lanes = await self._lanes()
        dials: collections.Counter[str] = collections.Counter()
        held = 0  # scheduled calls a limit held back this round: the others still go
        while lanes:
            for organization_id, queues in list(lanes.items()):
                if not self._can_dial():  # the PBX went down (or the node drains) meanwhile
                    return delay
                queue = queues.popleft()
                try:
                    step = await self._dial_from(queue, trunks)
                except _Wait as wait:
                    delay = min(delay, wait.delay)
                    held += queue.campaign_id is None
                    # A campaign waits for its next round; scheduled calls step over the
                    # held one to those behind it, within the round's budget.
                    if queue.campaign_id is None and held < MAX_HELD_BACK:
                        queues.append(queue)
                else:
                    if step is _Step.DIALED:
                        queues.append(queue)  # its organization's next queue goes next time
                        dials[organization_id] += 1
                if dials[organization_id] >= MAX_DIALS_PER_ROUND:
                    delay = timedelta(0)  # work left over: the next round at once
                    queues.clear()
                if not queues:
                    del lanes[organization_id]
        return delay

    async def _lanes(self) -> dict[str, collections.deque[_Queue]]:
        """Each organization's due work: its scheduled calls (the organization whose call is
        due first first), then its running campaigns."""
        lanes: dict[str, collections.deque[_Queue]] = {}
        for organization_id in await self._store.scheduled_due_organizations(self._now()):
            lanes.setdefault(organization_id, collections.deque()).append(_Queue(organization_id))
        for campaign in await self._store.list_running_campaigns():
            org = campaign.organization_id
            lanes.setdefault(org, collections.deque()).append(_Queue(org, campaign.id))
        return lanes

    async def _dial_from(self, queue: _Queue, trunks: dict[str, Trunk]) -> _Step:
        if queue.campaign_id is None:
            return await self._dial_scheduled(queue, trunks)
        return await self._dial_one(queue.campaign_id, trunks)

    async def _dial_one(self, campaign_id: str, trunks: dict[str, Trunk]) -> _Step:
        due = _ContactDue(self, campaign_id, new_outbound_call_id())
        placed = await self._place(due, trunks)
        return _Step.DIALED if placed is not None else due.step

    async def _dial_scheduled(self, queue: _Queue, trunks: dict[str, Trunk]) -> _Step:
        """Claim the organization's scheduled call due first (but those held back) and
        originate it (or end it: expired, refused). One a limit holds back joins the held
        ones (``_Wait``)."""
        due = _ScheduledDue(self._engine, queue.organization_id, queue.held)
        placed = await self._place(due, trunks)
        if placed is None:
            return due.step
        queue.held.discard(placed.id)
        return _Step.DIALED

    async def _place(self, due: CallAsk, trunks: dict[str, Trunk]) -> Call | None:
        """Place what ``due`` claims; ``_Wait`` when a limit holds it back (the claim rolled
        back: the contact or scheduled call stays as it was)."""
        try:
            placed = await self._engine.placement.place(
                due, trunks, now=self._now(), launch=self._launch
            )
        except RateLimited:  # every caller number is at its own limit
            raise _Wait(timedelta(milliseconds=200)) from None
        if isinstance(placed, timedelta):
            raise _Wait(placed)
        return placed

    async def _refusal(
        self, tx: Transaction, campaign: Campaign, contact: CampaignContact
    ) -> str | None:
        """Why the contact must not be called now that it is due (policy, do-not-call, the
        organization's monthly spending limit)."""
        if destination_refusal(contact.destination, self._policy) is not None:
            return REFUSED  # the policy changed since the upload
        do_not_call = self._engine.compliance.do_not_call
        if await do_not_call.listed(tx, campaign.organization_id, contact.destination):
            return DO_NOT_CALL
        if await spend_refusal(tx, campaign.organization_id, self._now()) is not None:
            return SPEND_LIMIT_REACHED  # the organization's monthly spending limit
        return None

    async def _launch(self, originate: Originate) -> None:
        """Where a placed call's originate runs: in this loop's task group, up to
        ``MAX_ORIGINATING`` at once (``dial_due`` called on its own, as tests do: here)."""
        if self._originates is None:
            await self._originate(originate)
        else:
            await self._originating.acquire()
            self._originates.create_task(self._originate(originate, release=True))

    async def _originate(self, originate: Originate, *, release: bool = False) -> None:
        try:
            await originate()
        except ApiError as exc:  # the call is failed; its contact settles like any other
            log.info("dialer: a campaign call was not placed: %s", describe(exc))
        except Exception:  # the dialer goes on; the call is reconciled as any other
            log.exception("dialer: originating a campaign call failed")
        finally:
            if release:
                self._originating.release()


class _ContactDue:
    """A campaign's ask (``Placement.place``): its contact due first, claimed (``SKIP
    LOCKED``) under the campaign's row lock, dialed unless its window is closed, the policy or
    the do-not-call list refuses it, or the node's offline speech is at capacity."""

    def __init__(self, dialer: Dialer, campaign_id: str, call_id: str) -> None:
        self._dialer = dialer
        self._campaign_id = campaign_id
        self._call_id = call_id
        self._contact: CampaignContact | None = None
        self.step = _Step.IDLE  # when nothing is dialed: settled a contact, or idle

    async def claim(self, tx: Transaction, now: datetime) -> NewCall | timedelta | None:
        dialer = self._dialer
        campaign = await tx.get_campaign_for_update(None, self._campaign_id)
        if campaign is None or campaign.status is not CampaignStatus.RUNNING:
            return None
        contact = await tx.claim_contact(campaign.id, now)
        if contact is None:
            await dialer._manager.finish_if_done(tx, campaign, now)
            return None
        self.step = _Step.DIALED
        # The campaign's window and the operator's calling hours in the number's own zones.
        compliance = dialer._engine.compliance
        org_id = campaign.organization_id
        opening = await compliance.next_allowed(tx, org_id, contact.destination, now)
        if campaign.calling_window is not None:
            window = window_of(campaign.calling_window)
            tz = zone(contact.timezone or campaign.timezone)
            opening = max(opening, next_opening(window, tz, now))
        if opening > now:  # outside its hours: it waits for them to open (checked again then)
            contact.next_attempt_at = opening
            contact.updated_at = now
            await tx.update_contact(contact)
            return None
        refusal = await dialer._refusal(tx, campaign, contact)
        if refusal is not None:
            contact.state, contact.outcome, contact.updated_at = ContactState.DONE, refusal, now
            await tx.update_contact(contact)
            await dialer._manager.events.contact_done(tx, campaign, contact, now)
            return None
        dial = _new_call(self._call_id, campaign, contact)
        refused = dialer._engine.speech_refusal(dial.assistant.config, "campaign")
        if refused is not None:  # the node's offline speech is at capacity: it waits
            return timedelta(seconds=refused)  # rolls the claim back
        self._contact = contact
        return dial

    async def placed(self, tx: Transaction, call: Call, now: datetime) -> None:
        contact = self._contact
        assert contact is not None
        contact.state = ContactState.CALLING
        contact.attempts += 1
        contact.call_id = call.id
        contact.updated_at = now
        await tx.update_contact(contact)


class _ScheduledDue:
    """A scheduled call's ask (``Placement.place``): the organization's one due first but
    those ``held`` back this round, claimed (``SKIP LOCKED``), dialed as it was asked for
    unless its ``latest_at`` passed (it ends ``schedule-expired``), the operator's
    configuration refuses it now (it ends with the reason) or the node's offline speech is at
    capacity."""

    def __init__(self, engine: CallEngine, organization_id: str, held: set[str]) -> None:
        self._engine = engine
        self._organization_id = organization_id
        self._held = held
        self.step = _Step.IDLE  # when nothing is dialed: ended one, or idle

    async def claim(self, tx: Transaction, now: datetime) -> NewCall | timedelta | None:
        choice = ScheduledChoice(self._organization_id, skip=self._held)
        claimed = await self._engine.scheduled.claim(tx, now, choice)
        if claimed is None:
            return None
        self.step = _Step.DIALED
        if claimed.status is not CallStatus.SCHEDULED:
            return None  # expired or refused: ended without a dial
        self._held.add(claimed.id)  # unless it is dialed below
        dial = self._engine.scheduled.dial_of(claimed)
        refused = self._engine.speech_refusal(dial.assistant.config, "outbound")
        if refused is not None:  # the node's offline speech is at capacity: it waits
            return timedelta(seconds=refused)  # rolls the claim back
        return dial

    async def placed(self, tx: Transaction, call: Call, now: datetime) -> None:
        return None


def _new_call(call_id: str, campaign: Campaign, contact: CampaignContact) -> NewCall:
    variables = contact.variables
    return NewCall(
        call_id=call_id,
        organization_id=campaign.organization_id,
        destination=contact.destination,
        assistant=_assistant(campaign, contact.destination).filled(variables),
        context=None if campaign.context is None else fill(campaign.context, variables),
        ring_timeout_seconds=campaign.ring_timeout_seconds,
        number_ids=tuple(campaign.number_ids),
        campaign_id=campaign.id,
        campaign_max=campaign.max_concurrent,
    )


def _assistant(campaign: Campaign, destination: str) -> ResolvedAssistant:
    """The assistant a contact's call runs: the campaign's snapshot, or with a split the
    version the contact's number is given (the same for the same number, every attempt)."""
    chosen = ResolvedAssistant.of(campaign)
    if not campaign.split or campaign.assistant_id is None:
        return chosen
    number = version_for(campaign.split, campaign.assistant_id, destination)
    (version,) = [v for v in campaign.split if v.version == number]
    return dataclasses.replace(
        chosen,
        name=version.agent_name,
        business_name=version.business_name,
        config=version.assistant_config,
        version=version.version,
    )


__all__ = ["IDLE_POLL", "REFUSED", "Dialer"]
