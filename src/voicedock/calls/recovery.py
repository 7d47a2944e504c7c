"""Start-up recovery: the calls a previous run of voicedock left live go on, or end.

After a crash or ``kill -9`` the store still holds calls ``connecting`` / ``in-progress`` whose
legs are up at the PBX, while the new process has no media, no conversation and no adapter
registry entry for them: the caller would hear silence until they hang up, and the call would
stay ``in-progress`` for good. ``CallRecovery.recover`` settles each of them within
``RECOVERY_DEADLINE`` of the start:

* **resumed** (``plan_recovery``): an ``in-progress`` call, when resuming is on
  (``[calls] resume_after_restart``), the PBX can adopt calls (``ResumablePbx``) and a runner
  can serve them. The PBX adopts the call if its remote leg is still up and waiting
  (``adopt_call``: the previous run's media leg and bridge are dropped), then the runner opens
  a new media leg and runs the conversation with the stored messages as earlier turns and the
  resume line (``[calls] resume_message``) said first (``resumed_config``). Once it runs, a
  ``resumed`` call event marks the gap (``transitions.resumed_event_data``); the transcript
  goes on after the stored messages.
* **ended** otherwise, and whenever resuming fails (remote leg gone, PBX error, media or
  providers that do not start in time): every leg and bridge of the call is hung up
  (``LeftoverPbx.hang_up_leftovers``, asked again until none of them is listed) and the call
  ends ``ended`` with ``end_reason: "service-restart"``, reported (webhooks, SSE, end-of-call
  report) like any end. A PBX that cannot be reached or keeps listing a leg is logged, and
  the calls end all the same. Nothing is re-originated.

The calls are passed in: ``Service.start`` takes the node's own non-terminal calls of the
store *before* the PBX connects, so a call this run takes is never among them, nor a call of
another node sharing the database (``[node] id``). The calls of a node that died are ended by
a surviving node with ``CallRecovery.end_lost`` (``calls/nodes/lease.py``): hung up the same
way, they end ``node-lost`` and are not resumed. With several PBX servers (``pbx/several``)
each call is adopted or hung up on the server stored with it (``Call.pbx``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import msgspec

from voicedock.calls.engine import CallEngine
from voicedock.calls.engine.attempts import attempt
from voicedock.calls.transitions import (
    NODE_LOST,
    RESUMED,
    SERVICE_RESTART,
    end_after_restart,
    resumed_event_data,
)
from voicedock.config import DEFAULT_RESUME_MESSAGE
from voicedock.domain.assistant_config import AssistantConfig, set_or
from voicedock.domain.ids import mask_call_id
from voicedock.domain.records import Call, CallEvent, CallMessage, CallStatus, utcnow
from voicedock.errors import PbxError
from voicedock.pbx.base import LeftoverPbx, Pbx, ResumablePbx, RoutingPbx
from voicedock.pipeline.frames import SUPERVISOR, supervisor_note
from voicedock.store.base import Store

log = logging.getLogger("voicedock.calls.recovery")

RECOVERY_DEADLINE = 8.0  # seconds for everything: the calls settle within ~10 s of the start
ADOPT_WITHIN = 4.0  # seconds for the PBX to adopt a call (the rest is the hang-up's if not)
_RETRY_INTERVAL = 0.25  # a deleted leg may stay listed a moment (ChannelDestroyed ~5 ms)
_SEEDED_ROLES = ("user", "assistant")


class CallResumer(Protocol):
    """What serves a resumed call's conversation (``calls/runner/resuming.py``)."""

    async def resume(self, call: Call, messages: Sequence[CallMessage]) -> bool:
        """Run the adopted call's conversation (``call`` carries the resumed configuration,
        ``resumed_config``), its transcript going on after ``messages``; ``True`` once it
        runs, ``False`` if it could not start (the call is then hung up with
        ``service-restart``). Cancelled: the same."""
        ...


@dataclass(slots=True)
class Recovery:
    ended: list[str] = field(default_factory=list)  # call ids ended "service-restart"
    resumed: list[str] = field(default_factory=list)  # call ids whose conversation goes on
    legs_left: set[str] = field(default_factory=set)  # ids the PBX still listed at the deadline


def plan_recovery(calls: Sequence[Call], *, can_resume: bool) -> tuple[list[Call], list[Call]]:
    """(calls to try resuming, calls to end): only an answered call can go on; a call still
    ringing (``connecting``) is given up."""
    pending = [call for call in calls if not call.status.terminal]
    if not can_resume:
        return [], pending
    resume = [call for call in pending if call.status is CallStatus.IN_PROGRESS]
    return resume, [call for call in pending if call.status is not CallStatus.IN_PROGRESS]


def resumed_config(
    assistant_config: AssistantConfig,
    messages: Sequence[CallMessage],
    line: str = DEFAULT_RESUME_MESSAGE,
) -> AssistantConfig:
    """The assistant configuration a resumed call goes on with: ``line`` said first (instead
    of ``first_message``), and what was said before the gap as earlier turns of
    ``llm_config.messages`` (after the assistant's own), so the model knows the conversation."""
    llm_config = dict(set_or(assistant_config.llm_config, {}))
    seeded = llm_config.get("messages")
    history: list[object] = list(seeded) if isinstance(seeded, list) else []
    ordered = sorted(messages, key=lambda m: m.seq)
    history += [
        {"role": m.role, "content": m.content}
        if m.role in _SEEDED_ROLES
        # A supervisor's whisper stays an instruction the caller never heard.
        else {"role": "system", "content": supervisor_note(m.content)}
        for m in ordered
        if m.role in (*_SEEDED_ROLES, SUPERVISOR) and m.content.strip()
    ]
    llm_config["messages"] = history
    return msgspec.structs.replace(assistant_config, llm_config=llm_config, first_message=line)


def last_activity(call: Call, messages: Sequence[CallMessage]) -> datetime:
    """When the previous run was last known to serve the call: its last change or message."""
    moments = [call.updated_at, *(m.ended_at or m.started_at for m in messages)]
    return max(moment for moment in moments if moment is not None)


class CallRecovery:
    """Settles the calls a previous run of this node, or a dead node, left live: resumed or
    ended, each reported like any end (the engine's timeline and end-of-call reports)."""

    def __init__(
        self, store: Store, pbx: Pbx, engine: CallEngine, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._store = store
        self._pbx = pbx
        self._timeline = engine.timeline
        self._reports = engine.reports
        self._records = engine.records
        self._now = clock

    async def recover(
        self,
        calls: Sequence[Call],
        *,
        resumer: CallResumer | None = None,
        resume_message: str = DEFAULT_RESUME_MESSAGE,
        deadline: float = RECOVERY_DEADLINE,
    ) -> Recovery:
        """Resume what can go on (``resumer`` given and the PBX a ``ResumablePbx``), hang up
        and end the rest, all within ``deadline``."""
        recovery = Recovery()
        pbx = self._pbx
        locate_calls(pbx, calls)
        can_resume = resumer is not None and isinstance(pbx, ResumablePbx)
        to_resume, to_end = plan_recovery(calls, can_resume=can_resume)
        if not to_resume and not to_end:
            return recovery
        log.warning(
            "%d call(s) left live by a previous run: resuming %d, hanging up %d",
            len(to_resume) + len(to_end),
            len(to_resume),
            len(to_end),
        )
        loop = asyncio.get_running_loop()
        until = loop.time() + deadline
        async with asyncio.TaskGroup() as tg:
            if to_end:
                tg.create_task(self._end_calls(to_end, until, recovery))
            if to_resume:
                assert resumer is not None
                for call in to_resume:
                    tg.create_task(self._resume(resumer, call, resume_message, until, recovery))
        return recovery

    async def end_lost(
        self, calls: Sequence[Call], *, deadline: float = RECOVERY_DEADLINE
    ) -> Recovery:
        """The calls a dead node left (``calls/nodes/lease.py``): what is left of them at the
        PBX is hung up (checked, as after a restart), then each ends ``node-lost``, reported
        like any end."""
        recovery = Recovery()
        pending = [call for call in calls if not call.status.terminal]
        locate_calls(self._pbx, pending)
        if pending:
            until = asyncio.get_running_loop().time() + deadline
            await self._end_calls(pending, until, recovery, reason=NODE_LOST)
        return recovery

    async def end(self, call_id: str, reason: str = SERVICE_RESTART) -> Call | None:
        """End a call a previous run (or a dead node) left live with ``reason``, reported like
        any end, its report carrying the messages stored while it ran: the call as it ended
        (``None``: it had ended already)."""
        now = self._now()
        if not self._reports.carrying(call_id):
            self._reports.carry(call_id, await self._store.list_messages(call_id))
        async with self._store.transaction() as tx:
            moved = await self._timeline.transition(
                tx, call_id, functools.partial(end_after_restart, now=now, reason=reason), now
            )
        self._reports.drop(call_id)  # not moved: nothing reported it
        return moved

    async def mark_resumed(self, call_id: str, since: datetime) -> None:
        """Mark the gap of a call that goes on after a restart: a ``resumed`` call event, shown
        by ``GET /calls/{id}``, the event stream and webhooks."""
        now = self._now()
        async with attempt(self._store) as tx:
            call = await tx.get_call_for_update(call_id)
            if call is None or call.status is not CallStatus.IN_PROGRESS:
                return
            data = resumed_event_data(since, now)
            await self._timeline.add_event(tx, call, CallEvent(call_id, RESUMED, data, now))

    async def _resume(
        self,
        resumer: CallResumer,
        call: Call,
        line: str,
        until: float,
        recovery: Recovery,
    ) -> None:
        """One call: adopted and served, or handed to the hang-up path. Never raises."""
        pbx = self._pbx
        shown = mask_call_id(call.id)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(min(ADOPT_WITHIN, max(0.0, until - loop.time()))):
                messages = await self._store.list_messages(call.id)
                adopted = isinstance(pbx, ResumablePbx) and await pbx.adopt_call(
                    call.id, call.pbx_call_ref
                )
        except TimeoutError:
            log.warning("call %s: not adopted in time; hanging it up", shown)
            adopted = False
        except Exception as exc:  # noqa: BLE001 - any failure: the hang-up path
            log.warning("call %s: not adopted (%s); hanging it up", shown, type(exc).__name__)
            adopted = False
        if not adopted:
            log.info("call %s: its caller is gone or not waiting; ending it", shown)
            await self._end_calls([call], until, recovery)
            return
        # The runner owns the call from here: a failure hangs it up with "service-restart".
        running = False
        try:
            config = resumed_config(call.assistant_config, messages, line)
            resumed = dataclasses.replace(call, assistant_config=config)
            async with asyncio.timeout(max(0.0, until - loop.time())):
                running = await resumer.resume(resumed, messages)
        except TimeoutError:
            log.warning("call %s: conversation not resumed in time; hanging it up", shown)
        except Exception:
            log.exception("call %s: not resumed; hanging it up", shown)
        if running:
            recovery.resumed.append(call.id)
            log.warning("call %s: resumed after the restart", shown)
            try:  # the caller is back with the assistant: a lost event is no reason to hang up
                await self.mark_resumed(call.id, last_activity(call, messages))
            except Exception:
                log.exception("call %s: resumed event not stored", shown)
            return
        try:  # why it ends, whoever ends it first (the HANGUP our hang-up causes, or below)
            await self._records.set_end_reason(call.id, SERVICE_RESTART)
        except Exception as exc:  # noqa: BLE001 - end() below says it all the same
            log.warning("call %s: end reason not stored: %s", shown, type(exc).__name__)
        try:  # the runner hung it up when it was serving it; again, in case it was not
            await pbx.hangup(call.id, "normal")  # (idempotent)
        except Exception as exc:  # noqa: BLE001 - the call ends all the same
            log.warning("call %s: hang-up failed: %s", shown, type(exc).__name__)
        try:
            if await self.end(call.id) is not None:
                recovery.ended.append(call.id)
        except Exception:  # the runner's hang-up ends it all the same
            log.exception("call %s: not ended after the restart", shown)

    async def _end_calls(
        self,
        calls: Sequence[Call],
        until: float,
        recovery: Recovery,
        *,
        reason: str = SERVICE_RESTART,
    ) -> None:
        """Hang up what is left of ``calls`` at the PBX (checked), then end each of them."""
        loop = asyncio.get_running_loop()
        refs = {call.id: call.pbx_call_ref for call in calls}
        left = await _hang_up(self._pbx, refs, until - loop.time())
        recovery.legs_left |= left
        for call_id in sorted(left):
            log.error("call %s: its legs are still at the PBX (%s)", mask_call_id(call_id), reason)
        for call in calls:
            try:
                if await self.end(call.id, reason) is not None:
                    recovery.ended.append(call.id)
            except Exception:  # one call's store error must not leave the others live
                log.exception("call %s: not ended (%s)", mask_call_id(call.id), reason)


def locate_calls(pbx: Pbx, calls: Sequence[Call]) -> None:
    """Several PBX servers (``RoutingPbx``): each call's commands go to the server stored with
    it, so that its leftovers are hung up (or it is adopted) where it lives."""
    if isinstance(pbx, RoutingPbx):
        for call in calls:
            pbx.locate(call.id, call.pbx)


async def _hang_up(pbx: Pbx, refs: dict[str, str | None], deadline: float) -> set[str]:
    """Until the PBX lists none of the calls' legs (or the deadline): the call ids left."""
    left = set(refs)
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline
    while left:
        try:
            async with asyncio.timeout(max(0.0, until - loop.time())):
                left = await _hang_up_once(pbx, {call_id: refs[call_id] for call_id in left})
        except TimeoutError:
            break
        except PbxError as exc:
            log.warning("leftover legs not hung up yet: %s", exc)
        if not left or loop.time() + _RETRY_INTERVAL >= until:
            break
        await asyncio.sleep(_RETRY_INTERVAL)
    return left


async def _hang_up_once(pbx: Pbx, refs: dict[str, str | None]) -> set[str]:
    if isinstance(pbx, LeftoverPbx):
        return await pbx.hang_up_leftovers(refs)
    # A PBX that cannot name a previous run's legs: its own hang-up, unchecked.
    for call_id in refs:
        try:
            await pbx.hangup(call_id, "normal")
        except PbxError as exc:
            log.warning("call %s: hang-up failed: %s", mask_call_id(call_id), type(exc).__name__)
    return set()
