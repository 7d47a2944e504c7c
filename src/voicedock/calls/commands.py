"""Carrying out control commands on an in-progress call this node serves (a command for
another node's call reaches it through ``calls/nodes/command_relay``).

Each command is first stored as a call event (so the timeline shows what was asked, even when
no conversation is attached to say it), then handed to the live conversation if this node runs
one, else to the PBX (``end-call``, ``transfer``) or nowhere (``say``, ``inject-context``).

A ``transfer`` to a phone number passes the checks of a new call's leg first (the trunk, the
spending limit, the organization's calls at once: ``transfer_legs.py``). A test call's transfer
(``Call.test_run_id``) dials nothing, internal target or number: it is only recorded, its
``control`` event ``"result": "simulated"`` (its announcement still said to the caller), and
its test run says what would have been dialled. A ``handoff`` counts against the call's
squad's ``max_handoffs``, as the model's do.

``end-call`` is the one command a call that is not answered yet takes: it cancels the call.
The cancel is stored first (``end_reason`` "cancelled" on the connecting call), then the PBX
hangs the ringing leg up; the engine then ends the call, and an answer that crossed the cancel
ends it too (see ``transitions``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

import msgspec

from voicedock.calls.compliance.do_not_call import DoNotCall
from voicedock.calls.control import (
    TRANSFER_FAILED_MESSAGE,
    ControlCommand,
    EndCall,
    Handoff,
    InjectContext,
    LiveCall,
    LiveCalls,
    Say,
    Transfer,
)
from voicedock.calls.errors import CallNotActive, PbxCommandFailed
from voicedock.calls.observer import CallObserver, NoObserver
from voicedock.calls.policy import DestinationRefused, check_transfer_destination, loggable
from voicedock.calls.transfer_legs import LegRefused, TrunkLegs
from voicedock.calls.transitions import request_cancel
from voicedock.config import PolicySettings
from voicedock.domain.ids import mask_call_id
from voicedock.domain.json import JsonObject
from voicedock.domain.records import Call, CallEvent, CallStatus
from voicedock.domain.squads import OPERATOR_HANDOFF
from voicedock.errors import Conflict, NotFound, PbxError, Unprocessable
from voicedock.logs import describe
from voicedock.pbx.base import BRIEFING_KEY, Pbx, TransferTarget
from voicedock.store.base import Store

log = logging.getLogger("voicedock.calls")

API_END_CALL = "api-end-call"
# The ``result`` of a test call's transfer: recorded, nothing dialled.
SIMULATED = "simulated"


class CommandRunner:
    def __init__(
        self,
        store: Store,
        pbx: Pbx,
        policy: PolicySettings,
        do_not_call: DoNotCall,
        live_calls: LiveCalls,
        clock: Callable[[], datetime],
        legs: TrunkLegs,
        observer: CallObserver | None = None,
        wait_originated: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        """``legs``: whether a transfer to a phone number may dial its leg."""
        self._store = store
        self._legs = legs
        # Until the PBX accepted the call's originate (a cancel must not overtake it).
        self._wait_originated = wait_originated
        self._pbx = pbx
        self._policy = policy
        self._do_not_call = do_not_call
        self._live = live_calls
        self._now = clock
        self._observer: CallObserver = observer if observer is not None else NoObserver()
        # The destination of each call's latest accepted transfer, until the PBX reports the
        # outcome: ``transferred_to`` is written only when the PBX confirms (TRANSFERRED).
        self._requested_transfers: dict[str, str] = {}

    def requested_transfer(self, call_id: str) -> str | None:
        """The destination of the call's latest accepted transfer command, if any."""
        return self._requested_transfers.get(call_id)

    def forget(self, call_id: str) -> None:
        self._requested_transfers.pop(call_id, None)

    async def transfer_failed(self, call_id: str) -> None:
        """The PBX brought the caller back: the assistant says so and goes on."""
        self._requested_transfers.pop(call_id, None)
        live = self._live.get(call_id)
        if live is not None:
            await live.say(TRANSFER_FAILED_MESSAGE)

    async def run(self, org_id: str, call_id: str, command: ControlCommand) -> bool:
        """Carry out ``command``; True when it was an ``end-call`` that cancelled a call not
        answered yet (the PBX leg is hung up: the engine then ends the call)."""
        call = await self._store.get_call(org_id, call_id)
        if call is None:
            raise NotFound("no call with this id", error="Call not found")
        target = (
            await self._transfer_target(call, command) if isinstance(command, Transfer) else None
        )
        member = None
        if isinstance(command, Handoff):
            member = handoff_member(call, command)
            await self._check_handoffs_left(call)
        simulated = target is not None and call.test_run_id is not None
        if await self._record(call_id, command, simulated) is CallStatus.CONNECTING:
            await self._cancel(call_id)
            return True
        live = self._live.get(call_id)
        if simulated:  # a test call never leaves the PBX: its run reads what was asked
            log.info("test call %s: transfer recorded, not dialled", mask_call_id(call_id))
            if isinstance(command, Transfer) and command.announcement and live is not None:
                await live.say(command.announcement)  # what the caller would hear of it
            return False
        if target is not None:
            self._requested_transfers[call_id] = target.destination
        try:
            match command:
                case InjectContext(content, trigger_response, source):
                    if live is not None:
                        await live.inject_context(content, trigger_response, source)
                case Say(content):
                    if live is not None:
                        await live.say(content)
                case EndCall(message):
                    if live is not None:
                        await live.end_call(message)
                    else:
                        await self._pbx.hangup(call_id, "normal")
                case Handoff():
                    if live is not None and member is not None:
                        await live.hand_over(member)
                case Transfer(announcement=announcement, summary=summary):
                    assert target is not None
                    if live is not None:
                        await _prepare_live_transfer(live, target, announcement, summary)
                    if summary and target.mode == "warm":
                        target.extra.setdefault(BRIEFING_KEY, summary)
                    await self._pbx.transfer(call_id, target)
        except PbxError as exc:
            log.warning("call %s: control command failed: %s", mask_call_id(call_id), describe(exc))
            await self._add_event(
                call_id, "control", {"type": _type_of(command), "result": "failed"}
            )
            raise PbxCommandFailed("the PBX could not carry out the command") from exc
        return False

    async def _cancel(self, call_id: str) -> None:
        """Hang up the ringing leg of a call whose cancel is stored. A PBX failure is a 503;
        the cancel stays requested, so the call still ends when the PBX next reports it."""
        try:
            if self._wait_originated is not None:
                await self._wait_originated(call_id)
            await self._pbx.hangup(call_id, "normal")
        except PbxError as exc:
            log.warning("call %s: cancel failed: %s", mask_call_id(call_id), describe(exc))
            await self._add_event(call_id, "control", {"type": "end-call", "result": "failed"})
            raise PbxCommandFailed("the PBX could not hang up the ringing call") from exc

    async def _transfer_target(self, call: Call, command: Transfer) -> TransferTarget:
        try:
            checked = check_transfer_destination(command.destination, self._policy)
            if not checked.internal:  # the organization's list and the operator's
                await self._do_not_call.check(self._store, call.organization_id, checked.value)
        except DestinationRefused as refused:
            await self._security_event(call.id, command, refused)
            raise
        destination = checked.value
        if checked.internal or call.test_run_id is not None:  # a test call dials nothing
            return TransferTarget(
                destination=destination, internal=checked.internal, mode=command.mode
            )
        admitted = await self._legs.admit(call)
        if isinstance(admitted, LegRefused):
            await self._security_event(call.id, command, admitted)
            raise admitted.error
        return TransferTarget(destination=destination, trunk_endpoint=admitted, mode=command.mode)

    async def _check_handoffs_left(self, call: Call) -> None:
        """409 when the call was handed over ``max_handoffs`` times already: by the members'
        models (their ``handoff`` events) and by operators (the ``handoff`` commands taken)."""
        assert call.squad is not None  # handoff_member checked it
        made = sum(1 for event in await self._store.list_events(call.id) if _a_handoff(event))
        most = call.squad.max_handoffs
        if made >= most:
            raise Conflict(
                f"the call was handed over {made} times, the most it may be ({most})",
                error="Handoff limit reached",
            )

    async def _security_event(
        self, call_id: str, command: Transfer, refused: DestinationRefused | LegRefused
    ) -> None:
        """Store (and log, masked) a refused transfer: a possible toll-fraud attempt, or a
        leg its organization may not dial now."""
        shown = loggable(command.destination)
        log.warning(
            "call %s: transfer to %s refused (%s)", mask_call_id(call_id), shown, refused.reason
        )
        data: JsonObject = {
            "type": "transfer-refused",
            "reason": refused.reason,
            "destination": shown,
            "mode": command.mode,
        }
        await self._add_event(call_id, "security", data)

    async def _record(
        self, call_id: str, command: ControlCommand, simulated: bool = False
    ) -> CallStatus:
        """Store the command in the same transaction that re-checks the call is active (or,
        for ``end-call``, still ringing: then its cancel is stored); the status it found.
        ``simulated``: a test call's transfer, recorded and delivered nowhere."""
        now = self._now()
        async with self._store.transaction(brief=True) as tx:
            call = await tx.get_call_for_update(call_id)
            cancels = (
                call is not None
                and call.status is CallStatus.CONNECTING
                and isinstance(command, EndCall)
            )
            if call is None or (call.status is not CallStatus.IN_PROGRESS and not cancels):
                status = call.status.value if call is not None else "gone"
                hint = "; before answer only end-call (a cancel) is taken"
                raise CallNotActive(
                    f"the call is {status}; commands need a call in progress"
                    + (hint if status == "connecting" else ""),
                )
            changed = call
            if cancels:
                changed = request_cancel(call, now) or call
            elif isinstance(command, EndCall):
                changed = dataclasses.replace(call, end_reason=API_END_CALL, updated_at=now)
            if changed is not call:
                await tx.update_call(changed)
            data = command_data(command)
            live = self._live.get(call_id) is not None and not cancels
            data["delivered_to"] = "conversation" if live else "pbx"
            if simulated:
                data["delivered_to"], data["result"] = "none", SIMULATED
            if cancels:
                data["result"] = "cancelled"
            event = await tx.add_event(CallEvent(call_id, "control", data, now))
            await self._observer.on_event(tx, changed, event)
            return call.status

    async def _add_event(self, call_id: str, event_type: str, data: JsonObject) -> None:
        """Store an ``event_type`` event of the call (none once the call is gone) and tell
        the observer."""
        async with self._store.transaction(brief=True) as tx:
            call = await tx.get_call_for_update(call_id)
            if call is None:
                return
            event = await tx.add_event(CallEvent(call_id, event_type, data, self._now()))
            await self._observer.on_event(tx, call, event)


def _a_handoff(event: CallEvent) -> bool:
    """A handoff the call made: a member's model's (its ``handoff`` event) or an operator's
    (the ``handoff`` command taken; its own event follows once carried out)."""
    if event.type == "handoff":
        return event.data.get("reason") != OPERATOR_HANDOFF
    return (
        event.type == "control"
        and event.data.get("type") == "handoff"
        and event.data.get("result") != "failed"
    )


def handoff_member(call: Call, command: Handoff) -> str:
    """The member of the call's squad a ``handoff`` command names (by its name or its saved
    assistant); 409 when the call has no squad, 422 when its squad has no such member."""
    if call.squad is None:
        raise Conflict("the call was not placed with a squad", error="No squad")
    for member in call.squad.members:
        if command.member == member.name or (
            command.assistant_id is not None and command.assistant_id == member.assistant_id
        ):
            return member.name
    named = "member" if command.member is not None else "assistant_id"
    raise Unprocessable(f"{named}: the call's squad has no such member", error="Unknown member")


async def _prepare_live_transfer(
    live: LiveCall, target: TransferTarget, announcement: str | None, summary: str | None
) -> None:
    """The conversation announces the transfer (and briefs a warm one) before the PBX acts
    (one still starting first runs); one that cannot (never started, speech-to-speech) leaves
    it all to the PBX."""
    with contextlib.suppress(NotImplementedError):
        await live.transfer(target, announcement, summary)


_TYPES: dict[str, type[ControlCommand]] = {
    "inject-context": InjectContext,
    "say": Say,
    "end-call": EndCall,
    "transfer": Transfer,
    "handoff": Handoff,
}


def _type_of(command: ControlCommand) -> str:
    return next(name for name, kind in _TYPES.items() if isinstance(command, kind))


def command_data(command: ControlCommand) -> JsonObject:
    """A command as its call event stores it (and a node relays it to another)."""
    data: JsonObject = {"type": _type_of(command)}
    data.update({k: v for k, v in dataclasses.asdict(command).items() if v is not None})
    if data.get("source") == "api":  # the default: stored as before sources existed
        del data["source"]
    return data


def command_of_data(data: Mapping[str, object]) -> ControlCommand:
    """The command ``command_data`` wrote (another node's, relayed)."""
    values = dict(data)
    return msgspec.convert(values, _TYPES[str(values.pop("type"))])
