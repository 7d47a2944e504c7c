"""``POST /calls/outbound``: the API's ask for one call, placed now (``Placement.place``) or
stored to dial later (``ScheduledCalls.schedule``).

The request is checked first (the destination policy, the do-not-call list and the calling
hours in the callee's local time at the moment it is dialed, ``calls/compliance/``; its
schedule, its assistant and caller number; the node's offline speech at capacity is a 503):
``OutboundCalls.ask`` gives the checked request (``OutboundAsk``) whose ``placing`` says what it
will be, then ``OutboundAsk.place`` places it as one ``CallAsk``. With an ``Idempotency-Key``
the answer the API gives to ``place`` is stored in the transaction that stores the call, and a
request with a key already answered is given that answer again (``Replayed``), on every node:
concurrent requests with one key on this node wait for each other, on several nodes the store
decides. What the engine returns is typed: the call placed or scheduled (``Placed``) or the
earlier answer; the API writes the HTTP answer (``api/routes/calls.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import weakref
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from voicedock.calls.assistants.placeholders import fill
from voicedock.calls.assistants.squads import resolve_chosen
from voicedock.calls.compliance import Compliance
from voicedock.calls.engine.ground import EnginePart, Ground
from voicedock.calls.engine.placement import Placement
from voicedock.calls.engine.scheduling import ScheduledCalls
from voicedock.calls.outbound.idempotency import (
    IdempotencyKey,
    Idempotent,
    Replayed,
    StoredAnswer,
    purge_expired,
    replay,
    stored_answer,
)
from voicedock.calls.outbound.new_call import NewCall, check_number_choice
from voicedock.calls.outbound.request import OutboundRequest, check_schedule
from voicedock.calls.policy import check_destination
from voicedock.calls.speech_admission import SpeechAdmission
from voicedock.domain.ids import new_outbound_call_id
from voicedock.domain.records import Call, PhoneNumber
from voicedock.egress import EgressPolicy
from voicedock.errors import PaymentRequired, RateLimited
from voicedock.organizations.billing import spend_refusal
from voicedock.organizations.trunk_access import TrunkAccess
from voicedock.store.base import Transaction


@dataclasses.dataclass(frozen=True, slots=True)
class Placed:
    """What ``POST /calls/outbound`` does with its call: placed (``connecting``: the PBX
    accepted its originate) or scheduled (``window``: when it may be dialed, from and until)."""

    call_id: str
    window: tuple[datetime, datetime] | None = None

    @property
    def scheduled(self) -> bool:
        return self.window is not None


class _Requested:
    """``POST /calls/outbound``'s ask: its call, and the idempotency answer stored with it."""

    def __init__(self, dial: NewCall, idempotent: Idempotent | None) -> None:
        self._dial = dial
        self._idempotent = idempotent
        self.earlier: Replayed | None = None  # another request's answer for the key

    async def claim(self, tx: Transaction, now: datetime) -> NewCall | None:
        if self._idempotent is not None:  # another node may have won the race
            org_id = self._dial.organization_id
            self.earlier = await replay(tx, org_id, self._idempotent.key, now)
            if self.earlier is not None:
                return None
        return self._dial

    async def placed(self, tx: Transaction, call: Call, now: datetime) -> None:
        if self._idempotent is not None:
            org_id = self._dial.organization_id
            await tx.put_idempotency(stored_answer(org_id, self._idempotent, now))


class OutboundAsk:
    """A ``POST /calls/outbound`` checked and ready: ``placing`` says what it will be, and
    ``place`` places (or schedules) it, storing with the request's ``Idempotency-Key`` the
    answer the API gives for it, in the transaction that stores the call."""

    def __init__(
        self,
        calls: OutboundCalls,
        dial: NewCall,
        key: IdempotencyKey | None,
        schedule: tuple[datetime, datetime] | None,
        number: PhoneNumber | None,
    ) -> None:
        self._calls = calls
        self._dial = dial
        self._key = key
        self._schedule = schedule
        self._number = number
        self.placing = Placed(dial.call_id, schedule)

    async def place(self, answer: StoredAnswer) -> Placed | Replayed:
        """Place or schedule the call; ``answer``: the API's answer to ``placing``, stored
        with the key (when the request has one). What another request with the key was
        answered when it won the race (on another node)."""
        idempotent = None if self._key is None else Idempotent(self._key, answer)
        return await self._calls.commit(self._dial, self._schedule, self._number, idempotent)


class OutboundCalls(EnginePart):
    def __init__(
        self,
        ground: Ground,
        egress_policy: EgressPolicy,
        trunk_access: TrunkAccess,
        placement: Placement,
        scheduled: ScheduledCalls,
        compliance: Compliance,
        admission: SpeechAdmission | None = None,
    ) -> None:
        super().__init__(ground)
        self._settings = ground.settings
        self._compliance = compliance
        self._egress_policy = egress_policy
        self._trunk_access = trunk_access
        self._placement = placement
        self._scheduled = scheduled
        self._admission = admission
        self._key_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    @contextlib.asynccontextmanager
    async def ask(
        self,
        org_id: str,
        request: OutboundRequest,
        key: IdempotencyKey | None = None,
        api_key_id: str | None = None,
    ) -> AsyncIterator[OutboundAsk | Replayed]:
        """The request checked (``ApiError`` subclasses when refused), ready to place; or
        the answer an earlier request with ``key`` was given, to give again (nothing is
        checked then). Concurrent requests with one key on this node wait for each other
        until the first leaves this block.

        ``api_key_id``: the key that asked for the call, recorded on it.
        """
        if key is None:
            yield await self._check(org_id, request, None, api_key_id)
            return
        lock = self._key_locks.setdefault((org_id, key.key), asyncio.Lock())
        async with lock:  # concurrent requests with one key on this node: one call
            async with self._store.transaction() as tx:
                await purge_expired(tx, self._now())  # an indexed range: cheap when empty
                earlier = await replay(tx, org_id, key, self._now())
            if earlier is not None:
                yield earlier
            else:
                yield await self._check(org_id, request, key, api_key_id)

    async def _check(
        self,
        org_id: str,
        request: OutboundRequest,
        key: IdempotencyKey | None,
        api_key_id: str | None,
    ) -> OutboundAsk:
        check_destination(request.destination, self._settings.policy)
        schedule = check_schedule(request, self._now())
        # Scheduled: the hours at its scheduled time (checked again when it is dialed).
        dialed_at = self._now() if schedule is None else schedule[0]
        await self._compliance.check(self._store, org_id, request.destination, dialed_at)
        refused = await spend_refusal(self._store, org_id, self._now())
        if refused is not None:
            raise PaymentRequired(refused)
        settings = self._settings
        assistant = await resolve_chosen(
            self._store,
            org_id,
            request,
            settings.speech,
            settings.byok,
            self._egress_policy,
            max_handoffs=settings.calls.max_handoffs,
        )
        if self._admission is not None and schedule is None:
            self._admission.check(assistant.config, "outbound")  # 503 while at capacity
        chosen = await check_number_choice(
            self._store, org_id, request.number_id, self._trunk_access
        )
        dial = NewCall(
            call_id=new_outbound_call_id(),
            organization_id=org_id,
            destination=request.destination,
            assistant=assistant,
            context=None if request.context is None else fill(request.context, request.variables),
            ring_timeout_seconds=request.ring_timeout_seconds,
            number_id=request.number_id,
            api_key_id=api_key_id,
            metadata=request.metadata,
        )
        return OutboundAsk(self, dial, key, schedule, chosen)

    async def commit(
        self,
        dial: NewCall,
        schedule: tuple[datetime, datetime] | None,
        number: PhoneNumber | None,
        idempotent: Idempotent | None,
    ) -> Placed | Replayed:
        """``OutboundAsk.place``: stored to dial in ``schedule``, or placed now."""
        now = self._now()
        if schedule is not None:
            scheduled = await self._scheduled.schedule(dial, schedule, idempotent, now, number)
            return scheduled if isinstance(scheduled, Replayed) else Placed(dial.call_id, schedule)
        asked = _Requested(dial, idempotent)
        placed = await self._placement.place(asked, now=now)
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
        return Placed(placed.id)
