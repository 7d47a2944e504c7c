"""What the PBX says about a call, and what its silence means.

``PbxEvents.apply`` applies one PBX event to its call (called by the runner's event sink, the
PBX's one: ``calls/runner/event_sink.py``) and returns the call's record after it
(``EventApplied``), on which the runner acts without reading it again. A party that answers a
call voicedock no longer wants (cancelled, timed out, ended) is hung up at once.

An unanswered outbound call rings at most its ``ring_timeout_seconds``: that is the PBX's
originate timeout, and ``RingTimeouts.run`` (run by the ``Service``) fails a call the PBX left
ringing a little longer as ``no-answer`` and hangs its leg up (``ringing.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from datetime import datetime

from voicedock.calls.commands import CommandRunner
from voicedock.calls.engine.attempts import attempt
from voicedock.calls.engine.ground import EnginePart, Ground
from voicedock.calls.engine.ringing import RingDeadlines
from voicedock.calls.transitions import apply_pbx_event, cancel, cancel_requested, end, fail
from voicedock.domain.ids import mask_call_id
from voicedock.domain.json import JsonObject
from voicedock.domain.records import Call, CallEvent, CallStatus
from voicedock.logs import describe
from voicedock.pbx.base import Pbx, PbxEvent, PbxEventKind
from voicedock.pbx.causes import CallError
from voicedock.store.backlog import until_stored

log = logging.getLogger("voicedock.calls")

ENDED_WHILE_DISCONNECTED = "ended-while-disconnected"


@dataclasses.dataclass(frozen=True, slots=True)
class EventApplied:
    """What one PBX event did (``PbxEvents.apply``): its call's record after the event, moved
    or not (``None``: not a call of this store, or an event about every call)."""

    event: PbxEvent
    call: Call | None = None
    moved: bool = False  # the event changed the call (a ``status`` event was stored)

    @property
    def to_serve(self) -> Call | None:
        """The answered call whose conversation starts now (the runner): in progress after
        an ANSWERED (a repeated ANSWERED too: it is served unless it already is)."""
        call = self.call
        if self.event.kind is not PbxEventKind.ANSWERED or call is None:
            return None
        return call if call.status is CallStatus.IN_PROGRESS else None


async def hang_up_leg(pbx: Pbx, call_id: str) -> None:
    """Hang up a leg voicedock no longer wants; a failure is logged (reconciliation settles a
    leg left behind)."""
    try:
        await pbx.hangup(call_id, "normal")
    except Exception as exc:  # noqa: BLE001 - reconciliation settles a leg left behind
        log.warning("call %s: hang-up failed: %s", mask_call_id(call_id), describe(exc))


class PbxEvents(EnginePart):
    def __init__(self, ground: Ground, pbx: Pbx, commands: CommandRunner) -> None:
        super().__init__(ground)
        self._pbx = pbx
        self._commands = commands

    def now(self) -> datetime:
        """The engine's clock: what stamps an event with the moment it was heard."""
        return self._now()

    async def apply(self, event: PbxEvent, heard_at: datetime | None = None) -> EventApplied:
        """Apply one PBX event to its call: the runner (the PBX's event sink) hands each here
        and acts on what this returns, the call's record after the event, without reading it
        again. The call's times (``started_at`` at an answer, ``ended_at``) are ``heard_at``,
        when the adapter heard the event, however long it then waited behind the call's
        earlier writes (default: now). One attempt: ``StoreUnavailable`` (nothing stored, safe
        to retry: the runner's backlog retries it) and other errors reach the caller."""
        now = heard_at or self._now()
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
            for call in await self._store.list_active_calls(self._node_id):
                await self.apply(PbxEvent(call.id, PbxEventKind.PBX_RESTARTED))
            return EventApplied(received)
        if event.kind is PbxEventKind.TRANSFER_FAILED:
            return EventApplied(received, await self._transfer_failed(event, now))
        async with attempt(self._store, brief=True) as tx:
            read, moved = await self._timeline.step(
                tx, event.call_id, lambda call: apply_pbx_event(call, event, now), now
            )
        if moved is not None and event.kind is PbxEventKind.HANGUP:
            _log_failed_unanswered(moved, event)
        return EventApplied(received, moved or read, moved is not None)

    async def _answered(self, event: PbxEvent, now: datetime) -> EventApplied:
        """Answer moves a connecting call in progress; a call voicedock no longer wants
        (cancelled, timed out, ended) is hung up instead: nobody would talk to the party."""
        async with attempt(self._store, brief=True) as tx:
            read, moved = await self._timeline.step(
                tx, event.call_id, lambda call: apply_pbx_event(call, event, now), now
            )
        call = moved or read
        if call is not None and call.status.terminal:
            log.info("call %s: answered after it ended; hanging up", mask_call_id(event.call_id))
            await hang_up_leg(self._pbx, event.call_id)
        return EventApplied(event, call, moved is not None)

    async def _transfer_failed(self, event: PbxEvent, now: datetime) -> Call | None:
        """Stored as a ``transfer`` event; the caller is back, so the assistant says so."""
        async with attempt(self._store, brief=True) as tx:
            current = await tx.get_call_for_update(event.call_id)
            if current is None:
                return None
            data: JsonObject = {"result": "failed"}
            if event.detail:
                data["detail"] = event.detail
            await self._timeline.add_event(
                tx, current, CallEvent(current.id, "transfer", data, now)
            )
        if current.status is CallStatus.IN_PROGRESS:
            await self._commands.transfer_failed(event.call_id)
        return current

    async def reconcile(self) -> int:
        """Settle every non-terminal call of this node the PBX no longer has; returns how
        many moved."""
        live = await self._pbx.live_call_ids()
        moved = 0
        for call in await self._store.list_active_calls(self._node_id):
            if call.id in live:
                continue
            now = self._now()
            async with self._store.transaction() as tx:
                result = await self._timeline.transition(
                    tx, call.id, functools.partial(_settle, now=now), now
                )
            moved += result is not None
        return moved


class RingTimeouts(EnginePart):
    """Ends each outbound call still ringing past its ring timeout (plus a grace the PBX's own
    timeout normally beats) as ``no-answer``, and hangs its leg up."""

    def __init__(self, ground: Ground, pbx: Pbx, ringing: RingDeadlines) -> None:
        super().__init__(ground)
        self._pbx = pbx
        self._ringing = ringing

    async def run(self) -> None:
        """Run until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            self._ringing.changed.clear()
            now = loop.time()
            for call_id in self._ringing.take_due(now):
                try:
                    await until_stored(
                        functools.partial(self._timed_out, call_id),
                        what=f"ring timeout of call {mask_call_id(call_id)}",
                    )
                except Exception:
                    log.exception("call %s: ring timeout not applied", mask_call_id(call_id))
            wait = self._ringing.next_due(default=now + 60.0) - loop.time()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, wait)):
                    await self._ringing.changed.wait()

    async def _timed_out(self, call_id: str) -> None:
        now = self._now()

        def timed_out(call: Call) -> Call | None:
            if call.status is not CallStatus.CONNECTING:
                return None
            if cancel_requested(call):
                return cancel(call, now)
            return fail(call, CallError.NO_ANSWER, now)

        async with attempt(self._store, brief=True) as tx:
            moved = await self._timeline.transition(tx, call_id, timed_out, now)
        if moved is not None:
            log.info("call %s: not answered within its ring timeout", mask_call_id(call_id))
            await hang_up_leg(self._pbx, call_id)


def _log_failed_unanswered(call: Call, hangup: PbxEvent) -> None:
    """One warning for a call its HANGUP failed as a PBX error, or for a reason the adapter
    gave (a step of its answer that failed): what the PBX said."""
    if call.status is not CallStatus.FAILED:
        return
    if call.error != CallError.PBX_ERROR and not hangup.reason:
        return  # busy, no answer...: the call's error says it all
    said = f"hangup cause {hangup.cause}, SIP {hangup.tech_cause}"
    if hangup.detail:
        said = f"{hangup.detail}, {said}"
    if hangup.reason:
        said = f"{hangup.reason} ({said})"
    log.warning(
        "call %s: failed before the answer (%s): %s", mask_call_id(call.id), call.error, said
    )


def _settle(call: Call, now: datetime) -> Call | None:
    if cancel_requested(call):
        return cancel(call, now)
    if call.status is CallStatus.IN_PROGRESS:
        return end(call, call.end_reason or ENDED_WHILE_DISCONNECTED, now)
    return fail(call, CallError.PBX_ERROR, now)
