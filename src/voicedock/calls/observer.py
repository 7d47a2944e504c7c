"""``CallObserver``: what else must happen, in the same transaction, when a call changes.

The engine writes every call event (status transitions, control commands, transfer outcomes,
transcript turns) and the end-of-call report through one observer, inside the store
transaction that holds the change. The webhook outbox is such an observer: an event that was
stored is an event that will be delivered, and one that was rolled back is never sent.

Event types passed to ``on_event``: ``status`` (every transition; data from
``status_event_data``), ``control`` (a command as asked, or its failure), ``transfer``
(``{"result": "failed" | ...}``), ``transcript`` (one final utterance: role, content,
started_at, ended_at, interrupted). ``on_report`` runs once per call, when the call is
terminal and everything about it is recorded (transcript, analysis, latency).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from voicedock.domain.records import Call, CallEvent, CallMessage
from voicedock.store.base import Transaction


class CallObserver(Protocol):
    async def on_event(self, tx: Transaction, call: Call, event: CallEvent) -> None: ...

    async def on_report(
        self, tx: Transaction, call: Call, messages: Sequence[CallMessage]
    ) -> None: ...


class NoObserver:
    """The default: events are stored, nothing else happens."""

    async def on_event(self, tx: Transaction, call: Call, event: CallEvent) -> None:
        return None

    async def on_report(self, tx: Transaction, call: Call, messages: Sequence[CallMessage]) -> None:
        return None


class Observers:
    """Several observers in order (webhooks, live event streams, ...)."""

    def __init__(self, *observers: CallObserver) -> None:
        self._observers = list(observers)

    async def on_event(self, tx: Transaction, call: Call, event: CallEvent) -> None:
        for observer in self._observers:
            await observer.on_event(tx, call, event)

    async def on_report(self, tx: Transaction, call: Call, messages: Sequence[CallMessage]) -> None:
        for observer in self._observers:
            await observer.on_report(tx, call, messages)
