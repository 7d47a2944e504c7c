"""A call's end-of-call report: sent once, when everything about the call is stored.

A call no live conversation serves is reported as it ends (the terminal transition). A call a
conversation serves (``expect_record``: the runner attached it) is reported when both its end
and the conversation's record are stored, whichever comes last: the record stored first keeps
its messages here until the end arrives. The report goes to the engine's observers in the
transaction that stores the last of the two (``webhooks/publisher.py`` enqueues the
``end-of-call-report``), the call rated first (``organizations/billing.py``: its ``cost``, stored
with it, is in the report).
"""

from __future__ import annotations

from collections.abc import Sequence

from voicedock.calls.engine.attempts import on_failure
from voicedock.calls.observer import CallObserver
from voicedock.domain.records import Call, CallMessage
from voicedock.organizations.billing import CallRating
from voicedock.store.base import Transaction


class EndOfCallReports:
    def __init__(self, observer: CallObserver, rating: CallRating | None = None) -> None:
        self._observer = observer
        self._rating = rating if rating is not None else CallRating()
        # Calls whose live conversation has not handed in its record yet: their report waits.
        self._awaiting_record: set[str] = set()
        # Messages of a record stored before its call ended, or carried by a call ended after
        # a restart: they go with the report of the end.
        self._messages: dict[str, list[CallMessage]] = {}

    def expect_record(self, call_id: str) -> None:
        """A live conversation serves the call: its report waits for the conversation's
        record (``recorded``), which the runner always hands in."""
        self._awaiting_record.add(call_id)

    def record_handed_in(self, call_id: str) -> None:
        """The conversation's record is being stored (undone if its attempt does not commit)."""
        if call_id in self._awaiting_record:
            self._awaiting_record.discard(call_id)
            on_failure(lambda: self._awaiting_record.add(call_id))

    async def ended(self, tx: Transaction, call: Call) -> None:
        """``call`` moved to a terminal status in ``tx``: report it now, unless the record of
        its conversation is still to come (that one reports it)."""
        if call.id in self._awaiting_record:
            return
        messages = self._messages.pop(call.id, [])
        if messages:
            on_failure(lambda: self._messages.setdefault(call.id, messages))
        await self._report(tx, call, messages)

    async def recorded(self, tx: Transaction, call: Call, messages: list[CallMessage]) -> None:
        """The conversation's record of ``call`` is stored in ``tx``: report the call if it has
        ended; else its end reports it, with ``messages``."""
        if call.status.terminal:
            await self._report(tx, call, messages)
        else:  # the hang-up is still on its way: the terminal transition reports
            self._messages[call.id] = messages
            on_failure(lambda: self._messages.pop(call.id, None))

    async def _report(self, tx: Transaction, call: Call, messages: list[CallMessage]) -> None:
        rated = await self._rating.rated(tx, call)
        await self._observer.on_report(tx, rated, messages)

    def carrying(self, call_id: str) -> bool:
        """Messages wait for the call's end (``recorded`` or ``carry``)."""
        return call_id in self._messages

    def carry(self, call_id: str, messages: Sequence[CallMessage]) -> None:
        """The report of the call's coming end carries ``messages`` (a call a previous run
        left: the messages stored while it ran)."""
        self._messages[call_id] = list(messages)

    def drop(self, call_id: str) -> None:
        """What ``carry`` kept is not needed: the call did not end (nothing reported it)."""
        self._messages.pop(call_id, None)
