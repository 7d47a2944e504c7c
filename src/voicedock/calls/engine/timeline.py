"""A call's timeline: every change to a call, written in the caller's store transaction.

A new call is stored with its first ``status`` event (``begin``); a transition (``transition``,
``step``) stores the moved call with its ``status`` event, so the stored timeline is exactly the
sequence of transitions; every event goes to the engine's
observers in that transaction (``add_event``: the webhook outbox, the campaigns, the metrics),
so a webhook exists exactly when its change committed. What ends with a call follows its
terminal transition: it stops ringing, its live conversation and transfer requests are
forgotten, and its end-of-call report goes out (``reports.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from voicedock.calls.commands import CommandRunner
from voicedock.calls.control import LiveCalls
from voicedock.calls.engine.reports import EndOfCallReports
from voicedock.calls.engine.ringing import RingDeadlines
from voicedock.calls.observer import CallObserver
from voicedock.calls.transitions import status_event_data
from voicedock.domain.ids import mask_call_id
from voicedock.domain.json import JsonObject
from voicedock.domain.records import Call, CallEvent, CallStatus
from voicedock.store.base import Transaction

log = logging.getLogger("voicedock.calls")

# A call's move: the call as it moves (stored and reported), or ``None``: it does not move.
Move = Callable[[Call], Call | None]


class Timeline:
    def __init__(
        self,
        observer: CallObserver,
        live_calls: LiveCalls,
        commands: CommandRunner,
        ringing: RingDeadlines,
        reports: EndOfCallReports,
    ) -> None:
        self._observer = observer
        self._live_calls = live_calls
        self._commands = commands
        self._ringing = ringing
        self._reports = reports

    async def begin(self, tx: Transaction, call: Call, now: datetime) -> None:
        """Store the new ``call`` with its first ``status`` event (to its status), in ``tx``."""
        await tx.insert_call(call)
        data: JsonObject = {"to": call.status.value}
        await self.add_event(tx, call, CallEvent(call.id, "status", data, now))

    async def add_event(self, tx: Transaction, call: Call, event: CallEvent) -> None:
        """Store ``event`` of ``call`` and tell the observers, in ``tx``."""
        stored = await tx.add_event(event)
        await self._observer.on_event(tx, call, stored)

    async def transition(
        self, tx: Transaction, call_id: str, move: Move, now: datetime
    ) -> Call | None:
        """Move the call (read locked in ``tx``) with ``move``: the moved call, stored and
        reported, or ``None`` when there is no such call or it does not move."""
        _, moved = await self.step(tx, call_id, move, now)
        return moved

    async def step(
        self, tx: Transaction, call_id: str, move: Move, now: datetime
    ) -> tuple[Call | None, Call | None]:
        """``transition``, returning the call as read too: (read, moved)."""
        call = await tx.get_call_for_update(call_id)
        if call is None:
            return None, None
        moved = move(call)
        if moved is None:
            return call, None  # duplicate or out of order: nothing to store, nothing to report
        await tx.update_call(moved)
        await self.add_event(
            tx, moved, CallEvent(call_id, "status", status_event_data(call, moved), now)
        )
        if moved.status is not CallStatus.CONNECTING:
            self._ringing.stop(call_id)  # answered or over: no longer ringing
        if moved.status.terminal:
            self._live_calls.detach(call_id)
            self._commands.forget(call_id)
            await self._reports.ended(tx, moved)
        log.info("call %s: %s -> %s", mask_call_id(call_id), call.status, moved.status)
        return call, moved
