"""``POST /calls/outbound``: the API's ask for one call, placed now (``Placement.place``) or
stored to dial later (``ScheduledCalls.schedule``).

The request is checked first (the destination policy, the do-not-call list and the calling
hours in the callee's local time at the moment it is dialed, ``calls/compliance/``; its
schedule, its assistant and caller number; the node's offline speech at capacity is a 503),
then placed as one ``CallAsk``. With an ``Idempotency-Key`` the API's answer is stored in the
transaction that stores the call, and a request with a key already answered is given that
answer again (``Replayed``), on every node: concurrent requests with one key on this node wait
for each other, on several nodes the store decides. What it returns is typed: the call placed
or scheduled (``Placed``) or the earlier answer; the API writes the HTTP answer
(``api/routes/calls.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta

from voicedock.calls.assistants.placeholders import fill
from voicedock.calls.assistants.squads import resolve_chosen
from voicedock.calls.compliance import Compliance
from voicedock.calls.engine.placement import Placement
from voicedock.calls.engine.scheduling import ScheduledCalls
from voicedock.calls.outbound.idempotency import (
    Idempotent,
    Replayed,
    purge_expired,
    replay,
    stored_answer,
)
from voicedock.calls.outbound.new_call import NewCall, check_number_choice
from voicedock.calls.outbound.request import OutboundRequest, check_schedule
from voicedock.calls.policy import check_destination
from voicedock.calls.speech_admission import SpeechAdmission
from voicedock.config import Settings
from voicedock.domain.ids import new_outbound_call_id
from voicedock.domain.records import Call, CallStatus
from voicedock.egress import EgressPolicy
from voicedock.errors import PaymentRequired, RateLimited
from voicedock.organizations.billing import spend_refusal
from voicedock.organizations.trunk_access import TrunkAccess
from voicedock.store.base import Store, Transaction


@dataclasses.dataclass(frozen=True, slots=True)
class Placed:
    """What ``POST /calls/outbound`` did: ``call`` as stored, placed (``connecting``: the PBX
    accepted its originate) or scheduled (``scheduled``: to dial later)."""

    call: Call

    @property
    def scheduled(self) -> bool:
        return self.call.status is CallStatus.SCHEDULED


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
            await tx.put_idempotency(stored_answer(org_id, self._idempotent, call, now))


class OutboundCalls:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Callable[[], datetime],
        egress_policy: EgressPolicy,
        trunk_access: TrunkAccess,
        placement: Placement,
        scheduled: ScheduledCalls,
        compliance: Compliance,
        admission: SpeechAdmission | None = None,
    ) -> None:
        self._store = store
        self._compliance = compliance
        self._settings = settings
        self._now = clock
        self._egress_policy = egress_policy
        self._trunk_access = trunk_access
        self._placement = placement
        self._scheduled = scheduled
        self._admission = admission
        self._key_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def place(
        self,
        org_id: str,
        request: OutboundRequest,
        idempotent: Idempotent | None = None,
        api_key_id: str | None = None,
    ) -> Placed | Replayed:
        """Validate, record and originate (or schedule) one call. Raises ``ApiError``
        subclasses.

        ``api_key_id``: the key that asked for the call, recorded on it.
        """
        if idempotent is None:
            return await self._place(org_id, request, None, api_key_id)
        key = idempotent.key
        lock = self._key_locks.setdefault((org_id, key.key), asyncio.Lock())
        async with lock:  # concurrent requests with one key on this node: one call
            async with self._store.transaction() as tx:
                await purge_expired(tx, self._now())  # an indexed range: cheap when empty
                earlier = await replay(tx, org_id, key, self._now())
            if earlier is not None:
                return earlier
            return await self._place(org_id, request, idempotent, api_key_id)

    async def _place(
        self,
        org_id: str,
        request: OutboundRequest,
        idempotent: Idempotent | None,
        api_key_id: str | None,
    ) -> Placed | Replayed:
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
        now = self._now()
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
        if schedule is not None:
            scheduled = await self._scheduled.schedule(dial, schedule, idempotent, now, chosen)
            return scheduled if isinstance(scheduled, Replayed) else Placed(scheduled)
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
        return Placed(placed)
