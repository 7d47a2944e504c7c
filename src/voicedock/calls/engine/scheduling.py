"""Calls to dial later (``POST /calls/outbound`` with ``scheduled_at``): stored ``scheduled``,
claimed by a node's dialer when due (``claim``, then dialed by ``Placement.place`` as they were
asked for, ``dial_of``), or cancelled by ``end-call`` before then (``cancel``).

A scheduled call reserves no number and counts against no dial limit until it is claimed; the
organization's calls waiting are bounded (429 beyond). One whose ``latest_at`` passed before it
was claimed ends ``schedule-expired``; one the operator's configuration now refuses ends with
the reason (``calls/outbound/recheck.py``): never dialed.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime

from voicedock.calls.assistants.resolve import ResolvedAssistant
from voicedock.calls.compliance import Compliance
from voicedock.calls.engine.ground import EnginePart, Ground
from voicedock.calls.engine.placement import new_call_record
from voicedock.calls.outbound.idempotency import Idempotent, Replayed, replay, stored_answer
from voicedock.calls.outbound.new_call import NewCall
from voicedock.calls.outbound.recheck import scheduled_refusal
from voicedock.calls.outbound.request import RING_TIMEOUT_DEFAULT
from voicedock.calls.transitions import CANCELLED, SCHEDULE_EXPIRED, end_scheduled
from voicedock.domain.ids import mask_call_id
from voicedock.domain.json import JsonObject
from voicedock.domain.records import Call, CallEvent, CallStatus, PhoneNumber
from voicedock.errors import RateLimited
from voicedock.organizations.settings import max_scheduled_calls
from voicedock.organizations.trunk_access import TrunkAccess
from voicedock.store.base import ScheduledChoice, Transaction

log = logging.getLogger("voicedock.calls")


class ScheduledCalls(EnginePart):
    def __init__(self, ground: Ground, trunk_access: TrunkAccess, compliance: Compliance) -> None:
        super().__init__(ground)
        self._settings = ground.settings
        self._trunk_access = trunk_access
        self._compliance = compliance

    async def schedule(
        self,
        dial: NewCall,
        window: tuple[datetime, datetime],
        idempotent: Idempotent | None,
        now: datetime,
        number: PhoneNumber | None,
    ) -> Call | Replayed:
        """Store a call to dial in ``window`` (``scheduled_at``, ``latest_at``): the call as
        stored, or the answer another request with the key was given. ``number``: the caller
        number asked for (``None``: the organization's pool when dialed)."""
        call_id = dial.call_id
        call = new_call_record(dial, now, self._node_id)
        call.status = CallStatus.SCHEDULED
        call.scheduled_at, call.latest_at = window
        call.ring_timeout_seconds = dial.ring_timeout_seconds
        call.number_id = dial.number_id
        call.assistant_phone = None if number is None else number.number
        call.owner_node = None  # the node whose dialer claims it
        org_id = dial.organization_id
        async with self._store.transaction() as tx:
            if idempotent is not None:  # another node may have won the race
                earlier = await replay(tx, org_id, idempotent.key, now)
                if earlier is not None:
                    return earlier
            await self._check_bound(tx, org_id, now)
            if idempotent is not None:
                await tx.put_idempotency(stored_answer(org_id, idempotent, now))
            await self._timeline.begin(tx, call, now)
        log.info("call %s: scheduled", mask_call_id(call_id))
        return call

    async def _check_bound(self, tx: Transaction, org_id: str, now: datetime) -> None:
        """429 when the organization has as many calls waiting with ``scheduled_at`` as the
        operator allows (counted under the organization's lock: nodes never exceed it
        together); Retry-After: until the first of them is due."""
        most = max_scheduled_calls(self._settings, await tx.get_organization(org_id))
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

    async def claim(self, tx: Transaction, now: datetime, choice: ScheduledChoice) -> Call | None:
        """The dialer's turn (in ``tx``): claim the chosen scheduled call due first (``None``:
        none is due). One whose ``latest_at`` passed is ended ``schedule-expired``, one the
        operator's configuration now refuses ends with the reason
        (``calls/outbound/recheck.py``): returned ended. Else it is returned still scheduled,
        for ``Placement.place`` to dial (``dial_of``)."""
        call = await tx.claim_scheduled_call(self._node_id, now, choice)
        if call is None:
            return None
        if call.latest_at is not None and call.latest_at < now:
            log.info("call %s: not dialed before its latest_at", mask_call_id(call.id))
            reason: str | None = SCHEDULE_EXPIRED
        else:
            reason = await scheduled_refusal(
                tx, call, self._settings.policy, self._compliance, self._trunk_access, now
            )
        if reason is None:
            return call
        moved = await self._timeline.transition(
            tx, call.id, lambda c: end_scheduled(c, reason, now), now
        )
        return moved or call

    @staticmethod
    def dial_of(call: Call) -> NewCall:
        """How a scheduled call is dialed: as it was asked for."""
        return NewCall(
            call_id=call.id,
            organization_id=call.organization_id,
            destination=call.caller_phone or "",
            assistant=ResolvedAssistant.of(call),
            context=call.context,
            ring_timeout_seconds=call.ring_timeout_seconds or RING_TIMEOUT_DEFAULT,
            number_id=call.number_id,
            api_key_id=call.api_key_id,
            metadata=call.metadata,
            scheduled=call,
        )

    async def cancel(self, org_id: str, call_id: str) -> bool:
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
            await self._timeline.add_event(tx, call, CallEvent(call_id, "control", data, now))
            await self._timeline.transition(
                tx, call_id, lambda c: end_scheduled(c, CANCELLED, now), now
            )
        log.info("call %s: scheduled call cancelled", mask_call_id(call_id))
        return True
