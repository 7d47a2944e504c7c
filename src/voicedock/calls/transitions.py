"""The call state machine as pure functions: (call, PBX event, now) → updated call or None.

    connecting ──ANSWERED──▶ in-progress ──HANGUP / TRANSFERRED──▶ ended
        │  │                     │
        │  └──end-call (cancel)──┼──────────────────────────────────▶ ended ("cancelled")
        └──HANGUP (unanswered) / ring timeout──┴──PBX_RESTARTED──▶ failed

A cancel is first *requested* (``end_reason`` set on the connecting call, before the PBX is
asked to hang up), so whatever the PBX reports next — the HANGUP our hang-up caused, or an
ANSWER that crossed it — ends the call as cancelled; an answer never makes it in-progress.

Terminal states never move again, and an event that does not move the call (a duplicate
ANSWERED, a HANGUP after the call ended, anything out of order) yields ``None``: the engine
then writes nothing, so each transition is stored and reported exactly once.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from voicedock.domain.json import JsonObject
from voicedock.domain.records import Call, CallStatus, can_transition
from voicedock.pbx.base import PbxEvent, PbxEventKind
from voicedock.pbx.causes import CALLER_LEFT, CallError, error_for_unanswered

REMOTE_HANGUP = "remote-hangup"
TRANSFERRED = "transferred"
CANCELLED = "cancelled"  # end_reason of an unanswered call ended by ``end-call``
# end_reason of a scheduled call that could not be dialed before its latest_at.
SCHEDULE_EXPIRED = "schedule-expired"
# end_reason of a scheduled call refused when its time came, never dialed: the destination
# policy as configured then refuses its number; its caller number was removed or its trunk
# no longer serves the organization (``calls/outbound/recheck.py``).
DESTINATION_REFUSED = "destination-refused"
NUMBER_UNAVAILABLE = "number-unavailable"
# end_reason of a call a previous run of voicedock left live (killed or crashed): its legs are
# hung up at start-up (``calls/recovery.py``), answered or still ringing.
SERVICE_RESTART = "service-restart"
# Why a call ends that a node of several sharing the database served when it died: a surviving
# node ends it (calls/nodes/lease.py).
NODE_LOST = "node-lost"
# The call event of a call that went on after such a restart (``calls/recovery.py``).
RESUMED = "resumed"


def apply_pbx_event(call: Call, event: PbxEvent, now: datetime) -> Call | None:
    kind = event.kind
    if cancel_requested(call) and kind in (PbxEventKind.ANSWERED, PbxEventKind.HANGUP):
        return cancel(call, now)
    if kind is PbxEventKind.ANSWERED and call.status is CallStatus.CONNECTING:
        return _move(call, CallStatus.IN_PROGRESS, now, started_at=now)
    if kind is PbxEventKind.HANGUP:
        if call.status is CallStatus.CONNECTING:
            caller_left = event.detail == CALLER_LEFT
            error = error_for_unanswered(event.cause, event.tech_cause, caller_left=caller_left)
            return fail(call, error, now)
        if call.status is CallStatus.IN_PROGRESS:
            return end(call, call.end_reason or REMOTE_HANGUP, now)
    if kind is PbxEventKind.TRANSFERRED and call.status is CallStatus.IN_PROGRESS:
        # Set only now that the PBX confirms the target answered, never at the request.
        return end(
            call,
            TRANSFERRED,
            now,
            transferred_at=now,
            transferred_to=event.detail or call.transferred_to,
        )
    if kind is PbxEventKind.PBX_RESTARTED:
        return fail(call, CallError.PBX_RESTART, now)
    return None


def fail(call: Call, error: str, now: datetime) -> Call | None:
    """Move a live call to ``failed``; ``None`` if it is already terminal."""
    if not can_transition(call.status, CallStatus.FAILED):
        return None
    return _move(
        call,
        CallStatus.FAILED,
        now,
        error=str(error),
        ended_at=now,
        duration_seconds=_duration(call, now),
    )


def request_cancel(call: Call, now: datetime) -> Call | None:
    """Mark an unanswered call to be cancelled; ``None`` unless it is ``connecting``."""
    if call.status is not CallStatus.CONNECTING:
        return None
    return dataclasses.replace(call, end_reason=CANCELLED, updated_at=now)


def cancel_requested(call: Call) -> bool:
    return call.status is CallStatus.CONNECTING and call.end_reason == CANCELLED


def cancel(call: Call, now: datetime) -> Call | None:
    """Move a connecting call whose cancel was requested to ``ended`` ("cancelled")."""
    if not cancel_requested(call):
        return None
    return _move(call, CallStatus.ENDED, now, end_reason=CANCELLED, ended_at=now)


def end_scheduled(call: Call, reason: str, now: datetime) -> Call | None:
    """Move a scheduled call, never dialed, to ``ended`` with ``reason`` (``cancelled`` by
    ``end-call``, ``schedule-expired``, ``destination-refused``, ``number-unavailable``);
    ``None`` once it is no longer scheduled."""
    if call.status is not CallStatus.SCHEDULED:
        return None
    return _move(call, CallStatus.ENDED, now, end_reason=reason, ended_at=now)


def end(call: Call, reason: str, now: datetime, **changes: object) -> Call | None:
    """Move an answered call to ``ended`` with ``reason``; ``None`` if not allowed."""
    if call.status is not CallStatus.IN_PROGRESS:
        return None
    return _move(
        call,
        CallStatus.ENDED,
        now,
        end_reason=reason,
        ended_at=now,
        duration_seconds=_duration(call, now),
        **changes,
    )


def end_after_restart(call: Call, now: datetime, reason: str = SERVICE_RESTART) -> Call | None:
    """Move a call a previous run (or a dead node) left live to ``ended`` with ``reason``;
    ``None`` if it is already terminal. A call that was still ringing ends like a cancelled
    one (no ``started_at``, no ``error``): voicedock itself gave it up."""
    if call.status is CallStatus.IN_PROGRESS:
        return end(call, reason, now)
    if call.status is CallStatus.CONNECTING:
        return _move(call, CallStatus.ENDED, now, end_reason=reason, ended_at=now)
    return None


def resumed_event_data(since: datetime, now: datetime) -> JsonObject:
    """What the ``resumed`` call event says: the gap the caller sat through, from the previous
    run's last sign of the call (``since``) to the conversation going on (``now``)."""
    gap = max(0.0, (now - since).total_seconds())
    return {"gap_seconds": round(gap, 1), "last_activity_at": since.isoformat()}


def status_event_data(before: Call, after: Call) -> JsonObject:
    """What the stored ``status`` call event says about one transition."""
    data: JsonObject = {"from": before.status.value, "to": after.status.value}
    if after.error:
        data["error"] = after.error
    if after.end_reason and after.status is CallStatus.ENDED:
        data["end_reason"] = after.end_reason
    return data


def _duration(call: Call, now: datetime) -> int | None:
    if call.started_at is None:
        return None
    return max(0, round((now - call.started_at).total_seconds()))


def _move(call: Call, status: CallStatus, now: datetime, **changes: object) -> Call:
    return dataclasses.replace(call, status=status, updated_at=now, **changes)  # type: ignore[arg-type]
