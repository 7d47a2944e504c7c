"""The call engine: places outbound calls, takes inbound ones, and follows the PBX's events.

Every change to a call is one store transaction holding the call row and its ``status`` event
(plus the idempotency record for a new outbound call), so the stored timeline is exactly the
sequence of transitions. The PBX is only asked to act after the call is committed, and an
originate is never retried: a failure marks the call failed and is reported to the client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import weakref
from collections.abc import Callable
from datetime import datetime
from typing import NoReturn

from voicedock.calls.commands import CommandRunner
from voicedock.calls.control import ControlCommand, LiveCall, LiveCalls
from voicedock.calls.idempotency import (
    NOT_PLACED,
    IdempotencyKey,
    OutboundResult,
    not_placed_error,
    replay,
    stored_answer,
)
from voicedock.calls.ids import new_inbound_call_id, new_outbound_call_id, room_name_for
from voicedock.calls.live_record import LiveRecord, TranscriptTurn, transcript_event_data
from voicedock.calls.models import (
    Call,
    CallEvent,
    CallMessage,
    CallStatus,
    Direction,
    JsonObject,
    utcnow,
)
from voicedock.calls.observer import Observers
from voicedock.calls.outbound import check_number_choice, resolve_assistant
from voicedock.calls.outbound_request import OutboundRequest
from voicedock.calls.policy import check_destination
from voicedock.calls.transitions import apply_pbx_event, end, fail, status_event_data
from voicedock.config import Settings
from voicedock.errors import BadRequest, PbxUnavailable, RateLimited
from voicedock.pbx.base import InboundCall, OriginateRequest, Pbx, PbxEvent, PbxEventKind
from voicedock.pbx.causes import CallError
from voicedock.store.base import Store, Transaction
from voicedock.validation import is_e164, mask_number

log = logging.getLogger("voicedock.calls")

PBX_UNAVAILABLE = "pbx-unavailable"
ENDED_WHILE_DISCONNECTED = "ended-while-disconnected"


class CallEngine:
    def __init__(
        self,
        store: Store,
        pbx: Pbx,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._pbx = pbx
        self._settings = settings
        self._now = clock
        self.live_calls = LiveCalls()
        self.observers = Observers()
        self._commands = CommandRunner(
            store, pbx, settings.policy, self.live_calls, clock, self.observers
        )
        # Calls whose live conversation has not handed in its record yet: their end-of-call
        # report waits for it. Messages of a record stored before the call ended wait here.
        self._awaiting_record: set[str] = set()
        self._recorded_messages: dict[str, list[CallMessage]] = {}
        self._key_locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    # -- outbound -------------------------------------------------------------------------

    async def place_outbound(
        self, org_id: str, request: OutboundRequest, idempotency: IdempotencyKey | None = None
    ) -> OutboundResult:
        """Validate, record and originate one call. Raises ``ApiError`` subclasses."""
        if idempotency is None:
            return await self._place(org_id, request, None)
        lock = self._key_locks.setdefault((org_id, idempotency.key), asyncio.Lock())
        async with lock:  # concurrent requests with one key on this node: one call
            async with self._store.transaction() as tx:
                earlier = await replay(tx, org_id, idempotency)
            if earlier is not None:
                return earlier
            return await self._place(org_id, request, idempotency)

    async def _place(
        self, org_id: str, request: OutboundRequest, idempotency: IdempotencyKey | None
    ) -> OutboundResult:
        check_destination(request.destination, self._settings.policy)
        assistant = await resolve_assistant(self._store, org_id, request, self._settings.speech)
        await check_number_choice(self._store, org_id, request.number_id)
        now = self._now()
        call_id = new_outbound_call_id()
        body: JsonObject = {
            "success": True,
            "call_id": call_id,
            "status": "dialing",
            "room_name": room_name_for(call_id),
        }
        async with self._store.transaction() as tx:
            if idempotency is not None:  # another node may have won the race
                earlier = await replay(tx, org_id, idempotency)
                if earlier is not None:
                    return earlier
            number = await tx.reserve_phone_number(org_id, request.number_id, now)
            if number is None:
                raise RateLimited(
                    "every phone number you can call from is at its concurrent-call limit; "
                    "retry when a call has ended",
                    error="All phone numbers busy",
                )
            call = Call(
                id=call_id,
                organization_id=org_id,
                direction=Direction.OUTBOUND,
                status=CallStatus.CONNECTING,
                caller_phone=request.destination,
                assistant_phone=number.number,
                number_id=number.id,
                assistant_id=assistant.assistant_id,
                agent_name=assistant.name,
                business_name=assistant.business_name,
                assistant_config=assistant.config,
                first_message=assistant.config.get("first_message"),
                context=request.context,
                created_at=now,
                updated_at=now,
            )
            await tx.insert_call(call)
            await self._add_event(tx, call, CallEvent(call_id, "status", {"to": "connecting"}, now))
            if idempotency is not None:
                await tx.put_idempotency(stored_answer(org_id, idempotency, 200, body, now))
        trunk = await self._store.get_trunk(number.trunk)
        log.info("call %s: originating to %s", call_id, mask_number(request.destination))
        if trunk is None:
            missing = PbxUnavailable(f"trunk {number.trunk!r} is not configured")
            await self._record_not_placed(call_id, missing)
        try:
            await self._pbx.originate(
                OriginateRequest(
                    call_id=call_id,
                    destination=request.destination,
                    caller_id=number.number,
                    trunk_endpoint=trunk.pbx_endpoint,
                    media_format=trunk.codec,
                )
            )
        except Exception as exc:  # noqa: BLE001 - any failure means the call was not placed
            await self._record_not_placed(call_id, exc)
        return OutboundResult(200, body, deprecated=request.deprecated)

    async def _record_not_placed(self, call_id: str, exc: Exception) -> NoReturn:
        """Mark the call failed and raise the 503; the idempotency record points at the call."""
        error = PBX_UNAVAILABLE if isinstance(exc, PbxUnavailable) else CallError.PBX_ERROR
        log.warning("call %s: originate failed: %s", call_id, type(exc).__name__)
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

    async def handle_pbx_event(self, event: PbxEvent) -> None:
        """The ``PbxEventSink``: never raises into the adapter's reader loop."""
        try:
            await self._handle_pbx_event(event)
        except Exception:
            log.exception("call %s: could not apply PBX event %s", event.call_id, event.kind)

    async def _handle_pbx_event(self, event: PbxEvent) -> None:
        now = self._now()
        if event.kind is PbxEventKind.HANGUP and event.detail == CallError.PBX_RESTART.value:
            # The PBX lost the call by restarting: a failure, even after answer.
            event = PbxEvent(event.call_id, PbxEventKind.PBX_RESTARTED)
        if event.kind is PbxEventKind.TRANSFERRED and not event.detail:
            # An adapter that cannot name the reached target: the requested destination.
            requested = self._commands.requested_transfer(event.call_id) or ""
            event = dataclasses.replace(event, detail=requested)
        if event.kind is PbxEventKind.PBX_RESTARTED and not event.call_id:
            for call in await self._store.list_active_calls():
                await self._handle_pbx_event(PbxEvent(call.id, PbxEventKind.PBX_RESTARTED))
            return
        if event.kind is PbxEventKind.TRANSFER_FAILED:
            await self._transfer_failed(event, now)
            return
        async with self._store.transaction() as tx:
            await self._transition(
                tx, event.call_id, lambda call: apply_pbx_event(call, event, now), now
            )

    async def _transfer_failed(self, event: PbxEvent, now: datetime) -> None:
        """Stored as a ``transfer`` event; the caller is back, so the assistant says so."""
        async with self._store.transaction() as tx:
            current = await tx.get_call_for_update(event.call_id)
            if current is None:
                return
            data: JsonObject = {"result": "failed"}
            if event.detail:
                data["detail"] = event.detail
            await self._add_event(tx, current, CallEvent(current.id, "transfer", data, now))
        if current.status is CallStatus.IN_PROGRESS:
            await self._commands.transfer_failed(event.call_id)

    async def _transition(
        self,
        tx: Transaction,
        call_id: str,
        move: Callable[[Call], Call | None],
        now: datetime,
    ) -> Call | None:
        call = await tx.get_call_for_update(call_id)
        if call is None:
            return None
        moved = move(call)
        if moved is None:
            return None  # duplicate or out of order: nothing to store, nothing to report
        await tx.update_call(moved)
        await self._add_event(
            tx, moved, CallEvent(call_id, "status", status_event_data(call, moved), now)
        )
        if moved.status.terminal:
            self.live_calls.detach(call_id)
            self._commands.forget(call_id)
            if call_id not in self._awaiting_record:
                messages = self._recorded_messages.pop(call_id, [])
                await self.observers.on_report(tx, moved, messages)
        log.info("call %s: %s -> %s", call_id, call.status, moved.status)
        return moved

    async def _add_event(self, tx: Transaction, call: Call, event: CallEvent) -> None:
        stored = await tx.add_event(event)
        await self.observers.on_event(tx, call, stored)

    async def reconcile(self) -> int:
        """Settle every non-terminal call the PBX no longer has; returns how many moved."""
        live = await self._pbx.live_call_ids()
        moved = 0
        for call in await self._store.list_active_calls():
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
        if number is None or number.assistant_id is None:
            return None
        assistant = await self._store.get_assistant(number.organization_id, number.assistant_id)
        if assistant is None or not assistant.active:
            return None
        request = OutboundRequest(destination=number.number, assistant_id=assistant.id)
        try:
            resolved = await resolve_assistant(
                self._store, number.organization_id, request, self._settings.speech
            )
        except BadRequest:
            return None
        now = self._now()
        caller = inbound.caller if is_e164(inbound.caller) else None
        call = Call(
            id=new_inbound_call_id(caller),
            organization_id=number.organization_id,
            direction=Direction.INBOUND,
            status=CallStatus.CONNECTING,
            caller_phone=caller,
            assistant_phone=number.number,
            number_id=number.id,
            assistant_id=assistant.id,
            agent_name=resolved.name,
            business_name=resolved.business_name,
            assistant_config=resolved.config,
            first_message=resolved.config.get("first_message"),
            pbx_call_ref=inbound.pbx_call_ref,
            created_at=now,
            updated_at=now,
        )
        async with self._store.transaction() as tx:
            await tx.insert_call(call)
            await self._add_event(tx, call, CallEvent(call.id, "status", {"to": "connecting"}, now))
        return call.id

    # -- control --------------------------------------------------------------------------

    async def control(self, org_id: str, call_id: str, command: ControlCommand) -> None:
        await self._commands.run(org_id, call_id, command)

    def attach_live_call(self, call_id: str, live: LiveCall) -> None:
        """Route the call's commands to ``live``; its end-of-call report now waits for
        ``record_live_call`` (which the owner of ``live`` must call, even on failure)."""
        self.live_calls.attach(call_id, live)
        self._awaiting_record.add(call_id)

    def detach_live_call(self, call_id: str) -> None:
        self.live_calls.detach(call_id)

    # -- the live conversation's record ---------------------------------------------------

    async def set_end_reason(self, call_id: str, reason: str) -> None:
        """Why the call is about to end, when voicedock ends it (before the hang-up)."""
        now = self._now()
        async with self._store.transaction() as tx:
            call = await tx.get_call_for_update(call_id)
            if call is None or call.status is not CallStatus.IN_PROGRESS or call.end_reason:
                return  # an earlier reason (end-call, transfer) stands
            call.end_reason = reason
            call.updated_at = now
            await tx.update_call(call)

    async def record_transcript_turn(self, call_id: str, entry: TranscriptTurn) -> None:
        """One final utterance, as it happens (a ``transcript`` call event)."""
        now = self._now()
        async with self._store.transaction() as tx:
            call = await tx.get_call_for_update(call_id)
            if call is None:
                return
            event = CallEvent(call_id, "transcript", transcript_event_data(entry), now)
            await self._add_event(tx, call, event)

    async def record_live_call(self, call_id: str, record: LiveRecord | None) -> None:
        """Store what the live conversation produced (``None``: it produced nothing) and,
        if the call has ended, report it. Called once per attached conversation."""
        self.live_calls.detach(call_id)
        now = self._now()
        async with self._store.transaction() as tx:
            call = await tx.get_call_for_update(call_id)
            self._awaiting_record.discard(call_id)
            if call is None:
                return
            messages: list[CallMessage] = []
            if record is not None:
                for message in record.messages(call_id):
                    messages.append(await tx.add_message(message))
                call.latency = record.latency
                call.summary = record.summary
                call.analysis_result = record.analysis_result
                call.updated_at = now
                await tx.update_call(call)
            if call.status.terminal:
                await self.observers.on_report(tx, call, messages)
            else:  # the hang-up is still on its way: the terminal transition reports
                self._recorded_messages[call_id] = messages


def _settle(call: Call, now: datetime) -> Call | None:
    if call.status is CallStatus.IN_PROGRESS:
        return end(call, call.end_reason or ENDED_WHILE_DISCONNECTED, now)
    return fail(call, CallError.PBX_ERROR, now)
