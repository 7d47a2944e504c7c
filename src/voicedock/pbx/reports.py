"""``CallReports``: what an adapter tells the engine of its calls, each report made once.

PBX events arrive duplicated (ARI and AMI both report a hang-up) and out of order; the
adapter's ``CallRegistry`` records every transition, and a call's RINGING (never after its
answer), ANSWERED and HANGUP reach the PBX's one event sink (the service's ``CallRunner``) the
first time only. The caller's digits, a transfer's outcome and a restart go out as they come
(``emit``). A failing sink is logged; the adapter goes on.

The sink stores each event before it returns (a database transaction). Each call's events
reach it in order, and different calls' side by side (``voicedock.aio.Lanes``, in the adapter's
supervisor): the adapter's event stream hands an event over and reads the next, so a hundred
calls answered together are not stored one after another. An event of no call (a PBX's
restart, which every call of the node hears) waits until the calls' events before it are
stored, and the stream waits for it.
"""

from __future__ import annotations

import logging

from voicedock.aio import Lanes, Supervisor
from voicedock.pbx.base import PbxEvent, PbxEventKind, PbxEventSink
from voicedock.pbx.legs import CallRegistry

__all__ = ["CallReports"]


class CallReports:
    """The PBX events of one adapter's calls, to the sink ``start`` gives it."""

    def __init__(self, calls: CallRegistry, log: logging.Logger, tasks: Supervisor) -> None:
        """``calls``: the adapter's registry, where each report is marked; ``log`` and
        ``tasks``: the adapter's (the calls' lanes run in its supervisor)."""
        self._calls = calls
        self._log = log
        self._lanes = Lanes(tasks, log)
        self._sink: PbxEventSink | None = None

    def open(self, sink: PbxEventSink) -> None:
        """From now on, events go to ``sink`` (the ``Pbx.start`` of the adapter); before, they
        go nowhere."""
        self._sink = sink

    async def emit(self, event: PbxEvent) -> None:
        """Hand ``event`` over: queued behind its call's earlier events (module docstring)."""
        sink = self._sink
        if sink is None:
            return
        if event.call_id:
            await self._lanes.submit(event.call_id, lambda: self._deliver(sink, event))
            return
        await self._lanes.drained()  # every call's: after what the calls were told before
        await self._deliver(sink, event)

    async def drained(self) -> None:
        """Return once every event handed over so far reached the sink."""
        await self._lanes.drained()

    async def _deliver(self, sink: PbxEventSink, event: PbxEvent) -> None:
        try:
            await sink(event)
        except Exception:  # noqa: BLE001 - a failing sink is logged, the adapter goes on
            self._log.exception("PBX event sink failed for %s", event.kind)

    async def ringing(self, call_id: str) -> None:
        if self._calls.mark_ringing(call_id):
            await self.emit(PbxEvent(call_id, PbxEventKind.RINGING))

    async def answered(self, call_id: str) -> None:
        if self._calls.mark_answered(call_id):
            await self.emit(PbxEvent(call_id, PbxEventKind.ANSWERED))

    async def dtmf(self, call_id: str, digit: str) -> None:
        await self.emit(PbxEvent(call_id, PbxEventKind.DTMF, digit=digit))

    async def hangup(
        self,
        call_id: str,
        *,
        cause: int | None = None,
        tech_cause: int | None = None,
        detail: str = "",
        reason: str = "",
    ) -> bool:
        """The call's HANGUP, the first time only; True if it was reported now (``reason``:
        what failed, for the logs)."""
        if not self._calls.mark_ended(call_id):
            return False
        event = PbxEvent(
            call_id,
            PbxEventKind.HANGUP,
            cause=cause,
            tech_cause=tech_cause,
            detail=detail,
            reason=reason,
        )
        await self.emit(event)
        return True
