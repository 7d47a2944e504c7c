"""The PBX's one event sink (``PbxEventSink``, handed to the PBX by the ``Service``): the one
path of every PBX event.

Each event goes to the engine first (``PbxEvents.apply``), in order per call behind the call's
earlier writes (the runner's ``WriteBacklog``, retried while the store is unavailable), and the
engine returns the call's record after it. When an ANSWERED leaves the call in progress and the
PBX carries media (``MediaPbx``), the call is served from that record, not read again: a
``RunningCall`` attached to the engine as the call's ``LiveCall`` the moment it is answered
(before the media is open), so that the end-of-call report waits for its record even if the
caller hangs up while the media is still being set up. A hang-up, a transfer or the PBX's
restart stops the conversation of the call it ends (every call's, for a restart without a call).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from voicedock.calls.engine import CallEngine
from voicedock.calls.engine.pbx_events import EventApplied
from voicedock.calls.runner.one_call import OneCall
from voicedock.calls.runner.presynthesis import Presynthesis
from voicedock.calls.runner.running_call import RunningCall
from voicedock.calls.runner.served import ServedCalls
from voicedock.calls.transitions import REMOTE_HANGUP, TRANSFERRED
from voicedock.domain.ids import mask_call_id
from voicedock.domain.records import Call
from voicedock.errors import StoreUnavailable
from voicedock.logs import call_context
from voicedock.pbx.base import MediaPbx, PbxEvent, PbxEventKind
from voicedock.store.backlog import WriteBacklog

log = logging.getLogger("voicedock.calls")

# Events after which the call has left voicedock: its conversation ends without a hang-up.
_GONE_REASONS = {
    PbxEventKind.HANGUP: REMOTE_HANGUP,
    PbxEventKind.TRANSFERRED: TRANSFERRED,
    PbxEventKind.PBX_RESTARTED: "pbx-restart",
}


class PbxEventSink:
    def __init__(
        self,
        engine: CallEngine,
        media_pbx: MediaPbx | None,
        backlog: WriteBacklog,
        served: ServedCalls,
        one_call: OneCall,
        presynthesis: Presynthesis | None = None,
    ) -> None:
        self._engine = engine
        self._media_pbx = media_pbx  # None: a PBX without media, whose calls are not served
        self._backlog = backlog
        self._served = served
        self._one_call = one_call
        self._presynthesis = presynthesis

    async def handle_pbx_event(self, event: PbxEvent) -> None:
        """The event applied by the engine, in order per call behind the call's earlier
        writes (retried while the store is unavailable), then the live conversation started or
        stopped; never raises into the adapter."""
        heard_at = time.monotonic()  # an answer's: the call's timings start here
        heard_when = self._engine.pbx_events.now()  # and its record's times
        with call_context(event.call_id or None):  # the call's task started here inherits it
            try:
                if event.kind in _GONE_REASONS:
                    self._remote_gone(event)  # the caller is gone now, stored or not yet
                await self._backlog.submit(
                    event.call_id,
                    lambda: self._apply(event, heard_at, heard_when),
                    what=f"PBX event {event.kind} of call {mask_call_id(event.call_id)}",
                )
            except Exception:
                log.exception(
                    "call %s: could not apply PBX event %s", mask_call_id(event.call_id), event.kind
                )

    async def _apply(self, event: PbxEvent, heard_at: float, heard_when: datetime) -> None:
        """The event in the engine (one attempt: ``StoreUnavailable`` is retried by the
        backlog), then its follow-up here, on the call as the engine left it."""
        applied: EventApplied | None = None
        try:
            applied = await self._engine.pbx_events.apply(event, heard_when)
        except StoreUnavailable:
            raise
        except Exception:
            log.exception(
                "call %s: could not apply PBX event %s", mask_call_id(event.call_id), event.kind
            )
        try:
            answered = applied.to_serve if applied is not None else None
            if answered is not None:
                self._serve(answered, heard_at)
            elif event.kind in _GONE_REASONS:
                self._remote_gone(event)  # a conversation started by a late-applied answer
        except Exception:
            log.exception("call %s: live call not started or stopped", mask_call_id(event.call_id))

    def _remote_gone(self, event: PbxEvent) -> None:
        served = self._served
        targets = served.every() if not event.call_id else []
        if event.call_id and (one := served.get(event.call_id)) is not None:
            targets.append(one)
        for running in targets:
            running.remote_left(_GONE_REASONS[event.kind])
        presynthesis = self._presynthesis
        if presynthesis is None:
            return
        if event.call_id:
            presynthesis.drop(event.call_id)  # ended unanswered: its first message not needed
        else:
            presynthesis.drop_all()

    def _serve(self, call: Call, heard_at: float) -> None:
        """Start the conversation of ``call``, answered and in progress as the engine just
        stored it (or found it: a repeated answer), unless it is served already."""
        if self._media_pbx is not None:
            self._one_call.start(RunningCall(call.id, answered_at=heard_at), call, self._media_pbx)
