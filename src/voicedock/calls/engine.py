"""The call engine: places outbound calls, takes inbound ones, and follows the PBX's events.

Every change to a call is one store transaction holding the call row and its ``status`` event
(plus the idempotency record for a new outbound call), so the stored timeline is exactly the
sequence of transitions. The PBX is only asked to act after the call is committed, and an
originate is never retried: a failure marks the call failed and is reported to the client.

One function places an outbound call, whoever asks (``place``): ``POST /calls/outbound``
(``place_outbound``), and the dialer's campaign contacts and scheduled calls, each a
``CallAsk`` that claims what to dial in the transaction that stores the call. One function
applies a PBX event (``apply_pbx_event``, called by the ``CallRunner``, the PBX's event sink):
it returns the call's record after the event (``EventApplied``), on which the runner acts.

An unanswered outbound call rings at most its ``ring_timeout_seconds``: that is the PBX's
originate timeout, and ``watch_ring_timeouts`` (run by the ``Service``) fails a call the PBX left
ringing a little longer as ``no-answer`` and hangs its leg up. A party that answers a call
voicedock no longer wants (cancelled, timed out, ended) is hung up at once.

A store that is unavailable for a while (another process holds the SQLite file, a PostgreSQL
failover) loses nothing the PBX or the conversation said: the write methods come in pairs, one
attempt that raises ``StoreUnavailable`` with nothing committed (``apply_pbx_event``,
``store_transcript_turn``, ``store_live_record``, ``set_end_reason``: the ``CallRunner`` queues
them per call in a ``WriteBacklog``), and one that waits and retries inline
(``record_transcript_turn``, ``record_live_call``). What a failed attempt changed in memory is
undone (``_attempt``), so a retry reports exactly what one clean attempt would.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import math
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import NoReturn, Protocol

from voicedock.calls.admission import Kind, SpeechAdmission
from voicedock.calls.assistants.placeholders import fill
from voicedock.calls.assistants.request import AssistantServer, inbound_assistant
from voicedock.calls.assistants.resolve import ResolvedAssistant, resolve_assistant
from voicedock.calls.commands import CommandRunner
from voicedock.calls.config_mirror import stable_id
from voicedock.calls.control import ControlCommand, EndCall, LiveCall, LiveCalls
from voicedock.calls.live.record import (
    LiveRecord,
    TranscriptTurn,
    call_message,
    message_key,
    transcript_event_data,
)
from voicedock.calls.observer import Observers
from voicedock.calls.organization_settings import max_scheduled_calls
from voicedock.calls.outbound.dial_admission import admit_dial
from voicedock.calls.outbound.idempotency import (
    NOT_PLACED,
    IdempotencyKey,
    OutboundResult,
    not_placed_error,
    purge_expired,
    replay,
    stored_answer,
)
from voicedock.calls.outbound.new_call import NewCall, check_number_choice
from voicedock.calls.outbound.recheck import scheduled_refusal
from voicedock.calls.outbound.request import RING_TIMEOUT_DEFAULT, OutboundRequest, check_schedule
from voicedock.calls.policy import check_destination
from voicedock.calls.transitions import (
    CANCELLED,
    RESUMED,
    SCHEDULE_EXPIRED,
    SERVICE_RESTART,
    apply_pbx_event,
    cancel,
    cancel_requested,
    end,
    end_after_restart,
    end_scheduled,
    fail,
    resumed_event_data,
    status_event_data,
)
from voicedock.calls.trunk_access import TrunkAccess
from voicedock.config import Settings, default_node_id
from voicedock.domain.ids import (
    mask_call_id,
    new_inbound_call_id,
    new_outbound_call_id,
    room_name_for,
)
from voicedock.domain.records import (
    Call,
    CallEvent,
    CallMessage,
    CallStatus,
    Direction,
    JsonObject,
    PhoneNumber,
    Trunk,
    utcnow,
)
from voicedock.domain.webhooks import EventType
from voicedock.egress.settings import egress_policy
from voicedock.errors import PbxUnavailable, RateLimited, StoreError
from voicedock.logs import call_context, describe
from voicedock.pbx.base import InboundCall, OriginateRequest, Pbx, PbxEvent, PbxEventKind
from voicedock.pbx.causes import CallError
from voicedock.store.backlog import until_stored
from voicedock.store.base import Store, Transaction
from voicedock.validation import is_e164, mask_number

log = logging.getLogger("voicedock.calls")

PBX_UNAVAILABLE = "pbx-unavailable"
ENDED_WHILE_DISCONNECTED = "ended-while-disconnected"
# How long past its ring timeout a call may still ring before the engine ends it: the PBX's
# own originate timeout comes first and gives the precise cause.
RING_GRACE_SECONDS = 3.0
# A cancel waits at most this long for the PBX to accept the call's originate.
ORIGINATE_WAIT_SECONDS = 10.0

# The in-memory effects to undo if the current ``_attempt`` transaction does not commit.
_undo_on_failure: ContextVar[list[Callable[[], object]] | None] = ContextVar(
    "voicedock_engine_undo", default=None
)


def _on_failure(undo: Callable[[], object]) -> None:
    pending = _undo_on_failure.get()
    if pending is not None:
        pending.append(undo)


class Presynthesizer(Protocol):
    """Prepares a call's speech while it is not answered yet (``CallRunner``)."""

    def prepare(self, call: Call, ring_seconds: float) -> None:
        """``call`` (its assistant known) is ringing, for at most ``ring_seconds``."""
        ...

    def drop(self, call_id: str) -> None:
        """The call will not be answered: what was prepared for it is not needed."""
        ...


# How long an accepted inbound call may take to be answered (it is answered at once).
INBOUND_ANSWER_S = 30.0


class CallAsk(Protocol):
    """Who asks for an outbound call, as ``CallEngine.place`` sees it: inside the one store
    transaction that stores the call (``POST /calls/outbound``; the dialer's campaign contacts
    and scheduled calls, ``calls/campaigns/dialer.py``)."""

    async def claim(self, tx: Transaction, now: datetime) -> NewCall | timedelta | None:
        """What to dial now, taken in ``tx``; how long to wait first (``tx`` rolls back:
        nothing was claimed); ``None``: nothing to dial (what ``tx`` did commits)."""
        ...

    async def placed(self, tx: Transaction, call: Call, now: datetime) -> None:
        """``call`` is stored (``connecting``) in ``tx``: what the asker records with it."""
        ...


# Where a placed call's originate runs when the asker does not wait for it: given the
# originate, to run once or hand to its own tasks (the dialer's originates overlap).
Originate = Callable[[], Awaitable[None]]
Launch = Callable[[Originate], Awaitable[None]]


class _HeldBack(Exception):
    """A limit (or the asker) says to wait: the placing transaction rolls back."""

    def __init__(self, wait: timedelta) -> None:
        super().__init__(wait)
        self.wait = wait


class _Requested:
    """``POST /calls/outbound``'s ask: its call, and the idempotency answer stored with it."""

    def __init__(self, dial: NewCall, idempotency: IdempotencyKey | None, body: JsonObject):
        self._dial = dial
        self._idempotency = idempotency
        self._body = body
        self.earlier: OutboundResult | None = None  # another request's answer for the key

    async def claim(self, tx: Transaction, now: datetime) -> NewCall | None:
        if self._idempotency is not None:  # another node may have won the race
            self.earlier = await replay(tx, self._dial.organization_id, self._idempotency, now)
            if self.earlier is not None:
                return None
        return self._dial

    async def placed(self, tx: Transaction, call: Call, now: datetime) -> None:
        if self._idempotency is not None:
            org_id = self._dial.organization_id
            await tx.put_idempotency(stored_answer(org_id, self._idempotency, 200, self._body, now))


@dataclasses.dataclass(frozen=True, slots=True)
class EventApplied:
    """What one PBX event did (``CallEngine.apply_pbx_event``): its call's record after the
    event, moved or not (``None``: not a call of this store, or an event about every call)."""

    event: PbxEvent
    call: Call | None = None
    moved: bool = False  # the event changed the call (a ``status`` event was stored)

    @property
    def to_serve(self) -> Call | None:
        """The answered call whose conversation starts now (``CallRunner``): in progress
        after an ANSWERED (a repeated ANSWERED too: it is served unless it already is)."""
        call = self.call
        if self.event.kind is not PbxEventKind.ANSWERED or call is None:
            return None
        return call if call.status is CallStatus.IN_PROGRESS else None


class CallEngine:
    def __init__(
        self,
        store: Store,
        pbx: Pbx,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
        *,
        ring_grace: float = RING_GRACE_SECONDS,
    ) -> None:
        self._store = store
        self._pbx = pbx
        self._settings = settings
        self._now = clock
        # What the URLs of a call's assistant may name (checked when the call is placed).
        self.egress_policy = egress_policy(settings)
        # The node this engine runs on: its calls carry it (calls/nodes/lease.py).
        self.node_id = settings.node.id or default_node_id()
        self.live_calls = LiveCalls()
        self.observers = Observers()
        # The organization's server that may choose the assistant of an inbound call.
        self.assistant_server: AssistantServer | None = None
        # Told of each call whose assistant is known before it is answered (the runner
        # synthesizes its first message meanwhile).
        self.presynthesizer: Presynthesizer | None = None
        # Refuses new calls while the node's offline speech is at capacity (the runner's).
        self.admission: SpeechAdmission | None = None
        self._commands = CommandRunner(
            store,
            pbx,
            settings.policy,
            self.live_calls,
            clock,
            self.observers,
            wait_originated=self._wait_originated,
        )
        # Outbound calls whose originate the PBX has not accepted yet (set when it has).
        self._originating: dict[str, asyncio.Event] = {}
        # Ringing outbound calls: loop time by which they must be answered (plus the grace).
        self._ring_deadlines: dict[str, float] = {}
        self.ring_grace = ring_grace  # seconds a call may ring past its ring timeout
        self._deadlines_changed = asyncio.Event()
        # Calls whose live conversation has not handed in its record yet: their end-of-call
        # report waits for it. Messages of a record stored before the call ended wait here.
        self._awaiting_record: set[str] = set()
        self._recorded_messages: dict[str, list[CallMessage]] = {}
        # Messages of running live calls stored as they happened (record_transcript_turn).
        self._live_messages: dict[str, list[CallMessage]] = {}
        self._organization_limits: dict[str, int] | None = None  # [limits.organizations]
        # [[trunks]] organizations: a caller number is only taken on a trunk open to its owner.
        self.trunk_access = TrunkAccess(settings.trunks)
        # Calls stored but not originated yet: their dial in the trunk's CPS window.
        self._trunk_dials: dict[str, int] = {}
        self._key_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    # -- outbound -------------------------------------------------------------------------

    async def place_outbound(
        self,
        org_id: str,
        request: OutboundRequest,
        idempotency: IdempotencyKey | None = None,
        api_key_id: str | None = None,
    ) -> OutboundResult:
        """Validate, record and originate one call. Raises ``ApiError`` subclasses.

        ``api_key_id``: the key that asked for the call, recorded on it.
        """
        if idempotency is None:
            return await self._place(org_id, request, None, api_key_id)
        lock = self._key_locks.setdefault((org_id, idempotency.key), asyncio.Lock())
        async with lock:  # concurrent requests with one key on this node: one call
            async with self._store.transaction() as tx:
                await purge_expired(tx, self._now())  # an indexed range: cheap when empty
                earlier = await replay(tx, org_id, idempotency, self._now())
            if earlier is not None:
                return earlier
            return await self._place(org_id, request, idempotency, api_key_id)

    async def _place(
        self,
        org_id: str,
        request: OutboundRequest,
        idempotency: IdempotencyKey | None,
        api_key_id: str | None,
    ) -> OutboundResult:
        check_destination(request.destination, self._settings.policy)
        schedule = check_schedule(request, self._now())
        settings = self._settings
        assistant = await resolve_assistant(
            self._store, org_id, request, settings.speech, settings.byok, self.egress_policy
        )
        if self.admission is not None and schedule is None:
            self.admission.check(assistant.config, "outbound")  # 503 while at capacity
        chosen = await check_number_choice(
            self._store, org_id, request.number_id, self.trunk_access
        )
        now = self._now()
        call_id = new_outbound_call_id()
        body: JsonObject = {
            "success": True,
            "call_id": call_id,
            "status": "dialing",
            "room_name": room_name_for(call_id),
        }
        dial = NewCall(
            call_id=call_id,
            organization_id=org_id,
            destination=request.destination,
            assistant=assistant,
            context=None if request.context is None else fill(request.context, request.variables),
            ring_timeout_seconds=request.ring_timeout_seconds,
            number_id=request.number_id,
            api_key_id=api_key_id,
            metadata=request.metadata,
        )
        if schedule is not None:
            return await self._schedule(dial, schedule, idempotency, now, chosen)
        asked = _Requested(dial, idempotency, body)
        placed = await self.place(asked, now=now)
        if isinstance(placed, timedelta):
            raise RateLimited(
                "the trunk or the organization is at its calls-per-second or concurrent-call "
                "limit; retry after the time in Retry-After",
                error="Call limit reached",
                retry_after_seconds=math.ceil(placed.total_seconds()),
            )
        if placed is None:  # another node answered this key first
            assert asked.earlier is not None
            return asked.earlier
        return OutboundResult(200, body, deprecated=request.deprecated)

    async def place(
        self,
        ask: CallAsk,
        trunks: dict[str, Trunk] | None = None,
        *,
        now: datetime | None = None,
        launch: Launch | None = None,
    ) -> Call | timedelta | None:
        """Place one outbound call, whoever asks for it: ``POST /calls/outbound``, a
        campaign's contact come due, a scheduled call whose time has come (the dialer).

        In one store transaction ``ask`` claims what to dial, the call reserves a caller
        number, passes the dial limits (``calls/outbound/dial_admission.py``: counted across every
        node) and is stored ``connecting`` with its ``status`` event, and ``ask`` records it
        (the idempotency answer, the contact's call). Only after the commit is the PBX asked
        to originate: awaited here (a failure marks the call failed and raises the 503
        ``ApiError``), or handed to ``launch`` (the dialer's originates overlap).

        Returns the call; how long a limit (or ``ask``) says to wait, nothing stored;
        ``None`` when ``ask`` has nothing to dial. ``RateLimited``: every caller number is
        busy. ``trunks``: the configured trunks by name, read here unless given; ``now``: the
        moment of the dial (the engine's clock unless given)."""
        if trunks is None:
            trunks = await self._trunks()
        now = now or self._now()
        try:
            async with self._store.transaction() as tx:
                stored = await self._claim_and_store(tx, ask, now, trunks)
        except _HeldBack as held:  # rolled back: nothing claimed, nothing stored
            return held.wait
        if stored is None:
            return None  # what the claim did (a contact settled, a call expired) committed
        call, dial = stored
        if launch is None:
            await self._originate(call, dial, trunks)
        else:
            await launch(functools.partial(self._originate, call, dial, trunks))
        return call

    async def _schedule(
        self,
        dial: NewCall,
        schedule: tuple[datetime, datetime],
        idempotency: IdempotencyKey | None,
        now: datetime,
        number: PhoneNumber | None,
    ) -> OutboundResult:
        """Store a call to dial later (``scheduled``): no number is reserved and no dial
        limit counts it until the dialer claims it at its time (``claim_scheduled``); the
        organization's calls waiting are bounded (429 beyond). ``number``: the caller number
        asked for (``None``: the organization's pool when dialed)."""
        call_id = dial.call_id
        call = self._new_call(dial, now)
        call.status = CallStatus.SCHEDULED
        call.scheduled_at, call.latest_at = schedule
        call.ring_timeout_seconds = dial.ring_timeout_seconds
        call.number_id = dial.number_id
        call.assistant_phone = None if number is None else number.number
        call.owner_node = None  # the node whose dialer claims it
        body: JsonObject = {
            "success": True,
            "call_id": call_id,
            "status": CallStatus.SCHEDULED.value,
            "room_name": room_name_for(call_id),
            "scheduled_at": _iso(call.scheduled_at),
            "latest_at": _iso(call.latest_at),
        }
        org_id = dial.organization_id
        async with self._store.transaction() as tx:
            if idempotency is not None:  # another node may have won the race
                earlier = await replay(tx, org_id, idempotency, now)
                if earlier is not None:
                    return earlier
            await self._check_scheduled_bound(tx, org_id, now)
            if idempotency is not None:
                await tx.put_idempotency(stored_answer(org_id, idempotency, 201, body, now))
            await tx.insert_call(call)
            data = {"to": CallStatus.SCHEDULED.value}
            await self._add_event(tx, call, CallEvent(call_id, "status", data, now))
        log.info("call %s: scheduled", mask_call_id(call_id))
        return OutboundResult(201, body)

    async def _check_scheduled_bound(self, tx: Transaction, org_id: str, now: datetime) -> None:
        """429 when the organization has as many calls waiting with ``scheduled_at`` as the
        operator allows (counted under the organization's lock: nodes never exceed it
        together); Retry-After: until the first of them is due."""
        most = max_scheduled_calls(self._settings, await self._store.get_organization(org_id))
        if not most:
            return
        await tx.lock_organization(org_id)
        waiting = await tx.scheduled_waiting(org_id)
        if waiting.count < most:
            return
        due_in = (waiting.first_due or now) - now
        raise RateLimited(
            f"your organization has {waiting.count} calls scheduled, the most it may have "
            "waiting (the operator's limit); retry after the time in Retry-After, when the "
            "first of them is due, or cancel one with end-call",
            error="Too many scheduled calls",
            retry_after_seconds=math.ceil(due_in.total_seconds()),
        )

    async def claim_scheduled(
        self,
        tx: Transaction,
        now: datetime,
        *,
        organization_id: str | None = None,
        skip: Collection[str] = (),
    ) -> Call | None:
        """The dialer's turn (in ``tx``): claim the scheduled call due first (of
        ``organization_id`` when given), but those in ``skip`` (``None``: none is due). One
        whose ``latest_at`` passed is ended ``schedule-expired``, one the operator's
        configuration now refuses ends with the reason (``calls/outbound/recheck.py``):
        returned ended. Else it is returned still scheduled, for ``place`` to dial
        (``scheduled_dial``)."""
        call = await tx.claim_scheduled_call(
            self.node_id, now, skip, organization_id=organization_id
        )
        if call is None:
            return None
        if call.latest_at is not None and call.latest_at < now:
            log.info("call %s: not dialed before its latest_at", mask_call_id(call.id))
            reason: str | None = SCHEDULE_EXPIRED
        else:
            reason = await scheduled_refusal(
                self._store, call, self._settings.policy, self.trunk_access
            )
        if reason is None:
            return call
        moved = await self._transition(tx, call.id, lambda c: end_scheduled(c, reason, now), now)
        return moved or call

    async def _claim_and_store(
        self, tx: Transaction, ask: CallAsk, now: datetime, trunks: dict[str, Trunk]
    ) -> tuple[Call, NewCall] | None:
        """``place``'s transaction: ``_HeldBack`` rolls it back."""
        dial = await ask.claim(tx, now)
        if dial is None:
            return None
        if isinstance(dial, timedelta):
            raise _HeldBack(dial)
        call = await self._store_dial(tx, dial, now, trunks)
        if isinstance(call, timedelta):
            raise _HeldBack(call)
        await ask.placed(tx, call, now)
        return call, dial

    @staticmethod
    def scheduled_dial(call: Call) -> NewCall:
        """How a scheduled call is dialed: as it was asked for."""
        return NewCall(
            call_id=call.id,
            organization_id=call.organization_id,
            destination=call.caller_phone or "",
            assistant=ResolvedAssistant(
                assistant_id=call.assistant_id,
                name=call.agent_name,
                business_name=call.business_name,
                config=call.assistant_config,
            ),
            context=call.context,
            ring_timeout_seconds=call.ring_timeout_seconds or RING_TIMEOUT_DEFAULT,
            number_id=call.number_id,
            api_key_id=call.api_key_id,
            metadata=call.metadata,
            scheduled=call,
        )

    async def _trunks(self) -> dict[str, Trunk]:
        return {trunk.name: trunk for trunk in await self._store.list_trunks()}

    async def _store_dial(
        self, tx: Transaction, dial: NewCall, now: datetime, trunks: dict[str, Trunk]
    ) -> Call | timedelta:
        """Reserve a caller number, count the call against the dial limits and store it
        ``connecting`` in ``tx`` (a new call is inserted, a scheduled one moves): the call,
        or how long to wait when a limit is reached (nothing stored; roll ``tx`` back).
        ``RateLimited`` when every number is busy."""
        admitted = await self._admit(tx, dial.call_id, dial, now, trunks)
        if isinstance(admitted, timedelta):
            return admitted
        number, pbx = admitted
        scheduled = dial.scheduled
        if scheduled is None:
            call = self._new_call(dial, now)
            call.assistant_phone = number.number
            call.number_id = number.id
            call.pbx = pbx
            call.trunk = number.trunk
            await tx.insert_call(call)
            data: JsonObject = {"to": "connecting"}
            await self._add_event(tx, call, CallEvent(call.id, "status", data, now))
            return call
        call = dataclasses.replace(
            scheduled,
            status=CallStatus.CONNECTING,
            assistant_phone=number.number,
            number_id=number.id,
            pbx=pbx,
            trunk=number.trunk,
            updated_at=now,
        )
        await tx.update_call(call)
        data = status_event_data(scheduled, call)
        await self._add_event(tx, call, CallEvent(call.id, "status", data, now))
        log.info("call %s: scheduled time reached, dialing", mask_call_id(call.id))
        return call

    async def _admit(
        self, tx: Transaction, call_id: str, dial: NewCall, now: datetime, trunks: dict[str, Trunk]
    ) -> tuple[PhoneNumber, str | None] | timedelta:
        """Reserve a caller number and pass the dial limits (shared by every node): the
        number and the PBX server of its trunk, or how long to wait."""
        number = await tx.reserve_phone_number(
            dial.organization_id,
            dial.number_id,
            now,
            among=dial.number_ids,
            trunks=self.trunk_access.usable(trunks, dial.organization_id),
        )
        if number is None:
            raise RateLimited(
                "every phone number you can call from is at its concurrent-call limit; "
                "retry when a call has ended",
                error="All phone numbers busy",
            )
        admitted = await admit_dial(
            tx,
            number.trunk,
            dial.organization_id,
            await self._organization_max(dial.organization_id),
            dial.campaign_id,
            dial.campaign_max,
            await tx.clock(),
        )
        if isinstance(admitted, timedelta):
            return admitted
        self._trunk_dials[call_id] = admitted
        return number, _trunk_pbx(trunks.get(number.trunk))

    def _new_call(self, dial: NewCall, now: datetime) -> Call:
        """The record of an outbound call (``connecting``, on this node), its number unset."""
        assistant = dial.assistant
        return Call(
            id=dial.call_id,
            organization_id=dial.organization_id,
            direction=Direction.OUTBOUND,
            status=CallStatus.CONNECTING,
            caller_phone=dial.destination,
            assistant_phone=None,
            assistant_id=assistant.assistant_id,
            agent_name=assistant.name,
            business_name=assistant.business_name,
            assistant_config=assistant.config,
            first_message=assistant.first_message,
            context=dial.context,
            owner_node=self.node_id,
            campaign_id=dial.campaign_id,
            api_key_id=dial.api_key_id,
            metadata=dial.metadata,
            created_at=now,
            updated_at=now,
        )

    async def _organization_max(self, organization_id: str) -> int:
        """The operator's override (``voicedock organizations set-limits``), else the file's."""
        org = await self._store.get_organization(organization_id)
        if org is not None and org.max_concurrent_calls is not None:
            return org.max_concurrent_calls
        if self._organization_limits is None:
            self._organization_limits = {
                stable_id("organization", o.organization): o.max_concurrent_calls
                for o in self._settings.limits.organizations
            }
        return self._organization_limits.get(organization_id, 0)

    async def _originate(self, call: Call, dial: NewCall, trunks: dict[str, Trunk]) -> None:
        """Ask the PBX to place ``call`` (stored by ``place``); a failure marks it failed and
        raises the 503 ``ApiError``."""
        call_id = call.id
        trunk = trunks.get(call.trunk or "")
        log.info("call %s: originating to %s", mask_call_id(call_id), mask_number(dial.destination))
        if trunk is None:
            missing = PbxUnavailable(f"trunk {call.trunk!r} is not configured")
            await self._dial_done(call_id)
            await self._record_not_placed(call_id, missing)
        assert call.assistant_phone is not None
        originated = self._originating[call_id] = asyncio.Event()
        self._prepare(call, dial.ring_timeout_seconds)
        try:
            with call_context(call_id):  # the adapter's lines and tasks for this call
                await self._pbx.originate(
                    OriginateRequest(
                        call_id=call_id,
                        destination=dial.destination,
                        caller_id=call.assistant_phone,
                        trunk_endpoint=trunk.pbx_endpoint,
                        timeout_seconds=dial.ring_timeout_seconds,
                        media_format=trunk.codec,
                        pbx=trunk.pbx,
                    )
                )
        except Exception as exc:  # noqa: BLE001 - any failure means the call was not placed
            if self.presynthesizer is not None:
                self.presynthesizer.drop(call_id)
            await self._dial_done(call_id)
            await self._record_not_placed(call_id, exc)
        finally:
            originated.set()
            del self._originating[call_id]
        await self._dial_done(call_id)
        self._watch_ring(call_id, dial.ring_timeout_seconds)

    async def _dial_done(self, call_id: str) -> None:
        """The trunk's calls-per-second window counts the call from now (the PBX has its
        channel, or never will)."""
        dial_id = self._trunk_dials.pop(call_id, None)
        if dial_id is None:
            return
        try:
            async with self._store.transaction() as tx:
                await tx.dial_done(dial_id, await tx.clock())
        except StoreError as exc:  # it stops counting after a while on its own
            log.warning("call %s: dial not recorded as done: %s", mask_call_id(call_id), exc)

    async def _wait_originated(self, call_id: str) -> None:
        """Until the PBX answered this node's originate of the call (a cancel that overtook
        it would find no channel to hang up)."""
        originated = self._originating.get(call_id)
        if originated is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ORIGINATE_WAIT_SECONDS):
                    await originated.wait()

    async def _record_not_placed(self, call_id: str, exc: Exception) -> NoReturn:
        """Mark the call failed and raise the 503; the idempotency record points at the call."""
        error = PBX_UNAVAILABLE if isinstance(exc, PbxUnavailable) else CallError.PBX_ERROR
        log.warning("call %s: originate failed: %s", mask_call_id(call_id), describe(exc))
        problem = not_placed_error(call_id)
        now = self._now()

        def not_placed(call: Call) -> Call | None:
            failed = fail(call, error, now)
            if failed is not None:
                failed.end_reason = NOT_PLACED  # marks the 503 answer for idempotent replays
            return failed

        async with self._store.transaction() as tx:
            await self._transition(tx, call_id, not_placed, now)
        raise problem from exc

    # -- PBX events -----------------------------------------------------------------------

    async def apply_pbx_event(self, event: PbxEvent) -> EventApplied:
        """Apply one PBX event to its call: the ``CallRunner`` (the PBX's event sink) hands
        each here and acts on what this returns, the call's record after the event, without
        reading it again. One attempt: ``StoreUnavailable`` (nothing stored, safe to retry:
        the runner's backlog retries it) and other errors reach the caller."""
        now = self._now()
        if event.kind is PbxEventKind.ANSWERED:
            return await self._answered(event, now)
        received = event
        if event.kind is PbxEventKind.HANGUP and event.detail == CallError.PBX_RESTART.value:
            # The PBX lost the call by restarting: a failure, even after answer.
            event = PbxEvent(event.call_id, PbxEventKind.PBX_RESTARTED)
        if event.kind is PbxEventKind.TRANSFERRED and not event.detail:
            # An adapter that cannot name the reached target: the requested destination.
            requested = self._commands.requested_transfer(event.call_id) or ""
            event = dataclasses.replace(event, detail=requested)
        if event.kind is PbxEventKind.PBX_RESTARTED and not event.call_id:
            # Each node hears of the restart and fails its own calls.
            for call in await self._store.list_active_calls(self.node_id):
                await self.apply_pbx_event(PbxEvent(call.id, PbxEventKind.PBX_RESTARTED))
            return EventApplied(received)
        if event.kind is PbxEventKind.TRANSFER_FAILED:
            return EventApplied(received, await self._transfer_failed(event, now))
        async with self._attempt() as tx:
            read, moved = await self._step(
                tx, event.call_id, lambda call: apply_pbx_event(call, event, now), now
            )
        return EventApplied(received, moved or read, moved is not None)

    @contextlib.asynccontextmanager
    async def _attempt(self) -> AsyncIterator[Transaction]:
        """A store transaction whose in-memory effects (``_on_failure``) are undone when it
        does not commit, so that retrying it is the same as trying it once."""
        undo: list[Callable[[], object]] = []
        token = _undo_on_failure.set(undo)
        try:
            async with self._store.transaction() as tx:
                yield tx
        except BaseException:
            for step in reversed(undo):
                step()
            raise
        finally:
            _undo_on_failure.reset(token)

    async def _answered(self, event: PbxEvent, now: datetime) -> EventApplied:
        """Answer moves a connecting call in progress; a call voicedock no longer wants
        (cancelled, timed out, ended) is hung up instead: nobody would talk to the party."""
        async with self._attempt() as tx:
            read, moved = await self._step(
                tx, event.call_id, lambda call: apply_pbx_event(call, event, now), now
            )
        call = moved or read
        if call is not None and call.status.terminal:
            log.info("call %s: answered after it ended; hanging up", mask_call_id(event.call_id))
            await self._hang_up_leg(event.call_id)
        return EventApplied(event, call, moved is not None)

    async def _hang_up_leg(self, call_id: str) -> None:
        try:
            await self._pbx.hangup(call_id, "normal")
        except Exception as exc:  # noqa: BLE001 - reconciliation settles a leg left behind
            log.warning("call %s: hang-up failed: %s", mask_call_id(call_id), describe(exc))

    # -- ring timeouts ----------------------------------------------------------------------

    def _watch_ring(self, call_id: str, timeout_seconds: int) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_seconds + self.ring_grace
        self._ring_deadlines[call_id] = deadline
        self._deadlines_changed.set()

    async def watch_ring_timeouts(self) -> None:
        """Run until cancelled: end each outbound call still ringing past its ring timeout
        (plus a grace the PBX's own timeout normally beats) as ``no-answer``."""
        loop = asyncio.get_running_loop()
        while True:
            self._deadlines_changed.clear()
            now = loop.time()
            due = [c for c, at in self._ring_deadlines.items() if at <= now]
            for call_id in due:
                self._ring_deadlines.pop(call_id, None)
                try:
                    await until_stored(
                        functools.partial(self._ring_timed_out, call_id),
                        what=f"ring timeout of call {mask_call_id(call_id)}",
                    )
                except Exception:
                    log.exception("call %s: ring timeout not applied", mask_call_id(call_id))
            wait = min(self._ring_deadlines.values(), default=now + 60.0) - loop.time()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, wait)):
                    await self._deadlines_changed.wait()

    async def _ring_timed_out(self, call_id: str) -> None:
        now = self._now()

        def timed_out(call: Call) -> Call | None:
            if call.status is not CallStatus.CONNECTING:
                return None
            if cancel_requested(call):
                return cancel(call, now)
            return fail(call, CallError.NO_ANSWER, now)

        async with self._attempt() as tx:
            moved = await self._transition(tx, call_id, timed_out, now)
        if moved is not None:
            log.info("call %s: not answered within its ring timeout", mask_call_id(call_id))
            await self._hang_up_leg(call_id)

    async def _transfer_failed(self, event: PbxEvent, now: datetime) -> Call | None:
        """Stored as a ``transfer`` event; the caller is back, so the assistant says so."""
        async with self._attempt() as tx:
            current = await tx.get_call_for_update(event.call_id)
            if current is None:
                return None
            data: JsonObject = {"result": "failed"}
            if event.detail:
                data["detail"] = event.detail
            await self._add_event(tx, current, CallEvent(current.id, "transfer", data, now))
        if current.status is CallStatus.IN_PROGRESS:
            await self._commands.transfer_failed(event.call_id)
        return current

    async def _transition(
        self,
        tx: Transaction,
        call_id: str,
        move: Callable[[Call], Call | None],
        now: datetime,
    ) -> Call | None:
        """Move the call (read locked in ``tx``) with ``move``: the moved call, stored and
        reported, or ``None`` when there is no such call or it does not move."""
        _, moved = await self._step(tx, call_id, move, now)
        return moved

    async def _step(
        self,
        tx: Transaction,
        call_id: str,
        move: Callable[[Call], Call | None],
        now: datetime,
    ) -> tuple[Call | None, Call | None]:
        """``_transition``, returning the call as read too: (read, moved)."""
        call = await tx.get_call_for_update(call_id)
        if call is None:
            return None, None
        moved = move(call)
        if moved is None:
            return call, None  # duplicate or out of order: nothing to store, nothing to report
        await tx.update_call(moved)
        await self._add_event(
            tx, moved, CallEvent(call_id, "status", status_event_data(call, moved), now)
        )
        if moved.status is not CallStatus.CONNECTING:
            # Answered or over: no longer ringing.
            deadline = self._ring_deadlines.pop(call_id, None)
            if deadline is not None:
                _on_failure(lambda: self._ring_deadlines.setdefault(call_id, deadline))
        if moved.status.terminal:
            self.live_calls.detach(call_id)
            self._commands.forget(call_id)
            if call_id not in self._awaiting_record:
                messages = self._recorded_messages.pop(call_id, [])
                if messages:
                    _on_failure(lambda: self._recorded_messages.setdefault(call_id, messages))
                await self.observers.on_report(tx, moved, messages)
        log.info("call %s: %s -> %s", mask_call_id(call_id), call.status, moved.status)
        return call, moved

    async def _add_event(self, tx: Transaction, call: Call, event: CallEvent) -> None:
        stored = await tx.add_event(event)
        await self.observers.on_event(tx, call, stored)

    async def end_after_restart(self, call_id: str, reason: str = SERVICE_RESTART) -> Call | None:
        """End a call a previous run (or a dead node) left live with ``reason``
        (``calls/recovery``), reported like any end, its report carrying the messages stored
        while it ran."""
        now = self._now()
        if call_id not in self._recorded_messages:
            self._recorded_messages[call_id] = await self._store.list_messages(call_id)
        async with self._store.transaction() as tx:
            moved = await self._transition(
                tx, call_id, functools.partial(end_after_restart, now=now, reason=reason), now
            )
        self._recorded_messages.pop(call_id, None)  # not moved: nothing reported it
        return moved

    async def stored_messages(self, call_id: str) -> list[CallMessage]:
        """The call's messages stored so far, in order."""
        return await self._store.list_messages(call_id)

    def continue_messages(self, call_id: str, messages: Sequence[CallMessage]) -> None:
        """A call resumed after a restart: its end-of-call report carries ``messages`` (stored
        by the previous run) before the ones its new conversation adds."""
        known = self._live_messages.get(call_id, [])
        seen = {message_key(message) for message in known}
        earlier = [message for message in messages if message_key(message) not in seen]
        self._live_messages[call_id] = [*earlier, *known]

    async def record_resumed(self, call_id: str, since: datetime) -> None:
        """Mark the gap of a call that goes on after a restart (``calls/recovery``): a
        ``resumed`` call event, shown by ``GET /calls/{id}``, the event stream and webhooks."""
        now = self._now()
        async with self._attempt() as tx:
            call = await tx.get_call_for_update(call_id)
            if call is None or call.status is not CallStatus.IN_PROGRESS:
                return
            data = resumed_event_data(since, now)
            await self._add_event(tx, call, CallEvent(call_id, RESUMED, data, now))

    async def reconcile(self) -> int:
        """Settle every non-terminal call of this node the PBX no longer has; returns how
        many moved."""
        live = await self._pbx.live_call_ids()
        moved = 0
        for call in await self._store.list_active_calls(self.node_id):
            if call.id in live:
                continue
            now = self._now()
            async with self._store.transaction() as tx:
                result = await self._transition(
                    tx, call.id, functools.partial(_settle, now=now), now
                )
            moved += result is not None
        return moved

    # -- inbound --------------------------------------------------------------------------

    async def handle_inbound(self, inbound: InboundCall) -> str | None:
        """Accept a call to one of our numbers: our call id, or ``None`` to reject it."""
        number = await self._store.find_phone_number_by_e164(inbound.called)
        if number is None:
            return None
        caller = inbound.caller if is_e164(inbound.caller) else None
        call_id = new_inbound_call_id(caller)
        resolved = await inbound_assistant(
            self._store,
            self._settings.speech,
            self._settings.byok,
            self.assistant_server,
            number,
            call_id=call_id,
            caller=caller,
        )
        if resolved is None:
            return None
        if self.speech_refusal(resolved.config, "inbound") is not None:
            return None  # rejected at the PBX: the node's offline speech is at capacity
        now = self._now()
        call = Call(
            id=call_id,
            organization_id=number.organization_id,
            direction=Direction.INBOUND,
            status=CallStatus.CONNECTING,
            caller_phone=caller,
            assistant_phone=number.number,
            number_id=number.id,
            assistant_id=resolved.assistant_id,
            agent_name=resolved.name,
            business_name=resolved.business_name,
            assistant_config=resolved.config,
            first_message=resolved.first_message,
            pbx_call_ref=inbound.pbx_call_ref,
            owner_node=self.node_id,
            pbx=inbound.pbx or None,
            trunk=number.trunk,
            created_at=now,
            updated_at=now,
        )
        async with self._store.transaction() as tx:
            await tx.insert_call(call)
            await self._add_event(tx, call, CallEvent(call.id, "status", {"to": "connecting"}, now))
        self._prepare(call, INBOUND_ANSWER_S)
        return call.id

    def speech_refusal(self, assistant_config: JsonObject, kind: Kind) -> int | None:
        """``None``: a new call of this assistant may start; else the seconds after which to
        try again, the node's offline speech being at capacity (``calls/admission.py``)."""
        if self.admission is None:
            return None
        return self.admission.refusal(assistant_config, kind)

    def _prepare(self, call: Call, ring_seconds: float) -> None:
        if self.presynthesizer is not None:
            try:
                self.presynthesizer.prepare(call, ring_seconds)
            except Exception:
                log.exception("call %s: first message not prepared", mask_call_id(call.id))

    # -- control --------------------------------------------------------------------------

    async def control(self, org_id: str, call_id: str, command: ControlCommand) -> None:
        if isinstance(command, EndCall) and await self._cancel_scheduled(org_id, call_id):
            return
        if await self._commands.run(org_id, call_id, command):
            # A cancel: the ringing leg is hung up; end the call now (unless the HANGUP that
            # caused, or an answer that crossed it, already did).
            now = self._now()
            async with self._store.transaction() as tx:
                await self._transition(tx, call_id, lambda call: cancel(call, now), now)

    async def _cancel_scheduled(self, org_id: str, call_id: str) -> bool:
        """``end-call`` on a scheduled call: it ends ``cancelled``, never dialed. False when
        the call is not (or no longer) scheduled: the dialer claimed it meanwhile."""
        now = self._now()
        async with self._store.transaction() as tx:
            call = await tx.get_call_for_update(call_id)
            if call is None or call.organization_id != org_id:
                return False
            if call.status is not CallStatus.SCHEDULED:
                return False
            data: JsonObject = {"type": "end-call", "delivered_to": "schedule"}
            data["result"] = "cancelled"
            await self._add_event(tx, call, CallEvent(call_id, "control", data, now))
            await self._transition(tx, call_id, lambda c: end_scheduled(c, CANCELLED, now), now)
        log.info("call %s: scheduled call cancelled", mask_call_id(call_id))
        return True

    def attach_live_call(self, call_id: str, live: LiveCall) -> None:
        """Route the call's commands to ``live``; its end-of-call report now waits for
        ``record_live_call`` (which the owner of ``live`` must call, even on failure)."""
        self.live_calls.attach(call_id, live)
        self._awaiting_record.add(call_id)

    def detach_live_call(self, call_id: str) -> None:
        self.live_calls.detach(call_id)

    # -- the live conversation's record ---------------------------------------------------

    async def set_end_reason(self, call_id: str, reason: str) -> None:
        """Why the call is about to end, when voicedock ends it (before the hang-up). One
        attempt: ``StoreUnavailable`` reaches the caller (the runner queues a retry)."""
        now = self._now()
        async with self._attempt() as tx:
            call = await tx.get_call_for_update(call_id)
            if call is None or call.status is not CallStatus.IN_PROGRESS or call.end_reason:
                return  # an earlier reason (end-call, transfer) stands
            call.end_reason = reason
            call.updated_at = now
            await tx.update_call(call)

    async def store_answering_machine(self, call_id: str, verdict: JsonObject) -> None:
        """The answering-machine detection's verdict (``result``, ``evidence``), as soon as it
        is known: on the call and as an ``answering-machine`` call event (and webhook). One
        attempt: ``StoreUnavailable`` reaches the caller (the runner queues a retry)."""
        now = self._now()
        async with self._attempt() as tx:
            call = await tx.get_call_for_update(call_id)
            if call is None:
                return
            call.answering_machine = verdict
            call.updated_at = now
            await tx.update_call(call)
            await self._add_event(
                tx, call, CallEvent(call_id, EventType.ANSWERING_MACHINE.value, verdict, now)
            )

    async def record_transcript_turn(self, call_id: str, entry: TranscriptTurn) -> None:
        """One final message, as it happens: stored with the call's messages (``GET`` shows
        the transcript so far) and as a ``transcript`` call event. Waits (and retries) while
        the store is unavailable."""
        now = self._now()
        await until_stored(
            lambda: self.store_transcript_turn(call_id, entry, now),
            what=f"transcript turn of call {mask_call_id(call_id)}",
        )

    async def store_transcript_turn(
        self, call_id: str, entry: TranscriptTurn, now: datetime | None = None
    ) -> None:
        """One attempt at ``record_transcript_turn`` (``now``: when the turn was final)."""
        now = now or self._now()
        async with self._attempt() as tx:
            call = await tx.get_call_for_update(call_id)
            if call is None:
                return
            message = await tx.add_message(call_message(call_id, entry))
            event = CallEvent(call_id, "transcript", transcript_event_data(entry), now)
            await self._add_event(tx, call, event)
        self._live_messages.setdefault(call_id, []).append(message)  # committed

    async def record_live_call(self, call_id: str, record: LiveRecord | None) -> None:
        """Store what the live conversation produced (``None``: it produced nothing) and,
        if the call has ended, report it. Called once per attached conversation. Waits (and
        retries) while the store is unavailable."""
        now = self._now()
        await until_stored(
            lambda: self.store_live_record(call_id, record, now),
            what=f"live call record of call {mask_call_id(call_id)}",
        )

    async def store_live_record(
        self, call_id: str, record: LiveRecord | None, now: datetime | None = None
    ) -> None:
        """One attempt at ``record_live_call``."""
        self.live_calls.detach(call_id)
        now = now or self._now()
        # Stored while the call ran; a copy, so that a failed attempt leaves them as they were.
        messages = list(self._live_messages.get(call_id, []))
        async with self._attempt() as tx:
            call = await tx.get_call_for_update(call_id)
            if call_id in self._awaiting_record:
                self._awaiting_record.discard(call_id)
                _on_failure(lambda: self._awaiting_record.add(call_id))
            if call is None:
                self._live_messages.pop(call_id, None)
                return
            if call.owner_node not in (None, self.node_id):
                # Another node settled the call while this one could not renew its lease
                # (docs/nodes.md): it ended and reported it; this node's late record of the
                # conversation would be a second, different end-of-call report.
                log.warning(
                    "call %s: settled by node %s meanwhile; this node's record of it is dropped",
                    mask_call_id(call_id),
                    call.owner_node,
                )
                self._live_messages.pop(call_id, None)
                return
            if record is not None:
                stored = {message_key(message) for message in messages}
                for message in record.messages(call_id):
                    if message_key(message) not in stored:
                        messages.append(await tx.add_message(message))
                messages.sort(key=lambda message: message.started_at or now)  # spoken order
                call.latency = record.latency
                if record.timings is not None:
                    call.timings = record.timings
                call.summary = record.summary
                call.analysis_result = record.analysis_result
                if record.recording_path is not None:
                    call.recording_path = record.recording_path
                    call.recording_duration_seconds = record.recording_duration_seconds
                if record.answering_machine is not None:
                    call.answering_machine = record.answering_machine
                if record.speech_usage is not None:
                    call.speech_usage = record.speech_usage
                call.updated_at = now
                await tx.update_call(call)
            if call.status.terminal:
                await self.observers.on_report(tx, call, messages)
            else:  # the hang-up is still on its way: the terminal transition reports
                self._recorded_messages[call_id] = messages
                _on_failure(lambda: self._recorded_messages.pop(call_id, None))
        self._live_messages.pop(call_id, None)  # committed


def _iso(moment: datetime) -> str:
    """``2026-01-01T10:00:00.000Z``, as the API writes every time."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _trunk_pbx(trunk: Trunk | None) -> str | None:
    """The PBX server a call through ``trunk`` lives on (``None``: the only one)."""
    if trunk is None or not trunk.pbx:
        return None
    return trunk.pbx


def _settle(call: Call, now: datetime) -> Call | None:
    if cancel_requested(call):
        return cancel(call, now)
    if call.status is CallStatus.IN_PROGRESS:
        return end(call, call.end_reason or ENDED_WHILE_DISCONNECTED, now)
    return fail(call, CallError.PBX_ERROR, now)
