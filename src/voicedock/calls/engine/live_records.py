"""What a live conversation writes of its call: its end reason, the answering-machine verdict,
each final message as it is said, and the call's record when the conversation ends
(``calls/live/record.py``: transcript, latency, timings, analysis, recording, usage, the
fallback plans' switches); the consent plan's outcome as soon as it is decided.

The runner attaches the conversation as the call's ``LiveCall`` (``attach``: control commands
reach it, and the end-of-call report waits for its record) and hands in each write behind the
call's earlier ones in its ``WriteBacklog``: every method here is one attempt that raises
``StoreUnavailable`` with nothing committed (what it changed in memory undone,
``attempts.py``), so that a retry stores exactly what one clean attempt would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from voicedock.calls.assistants.caller_memory import left_by
from voicedock.calls.control import LiveCall, LiveCalls
from voicedock.calls.engine.attempts import attempt
from voicedock.calls.engine.ground import EnginePart, Ground
from voicedock.calls.engine.reports import EndOfCallReports
from voicedock.calls.live.record import (
    LiveRecord,
    TranscriptTurn,
    call_message,
    message_key,
    transcript_event_data,
)
from voicedock.domain.flows import FlowProgress
from voicedock.domain.ids import mask_call_id
from voicedock.domain.json import JsonObject
from voicedock.domain.records import Call, CallEvent, CallMessage, CallStatus
from voicedock.domain.webhooks import EventType

log = logging.getLogger("voicedock.calls")
KNOWLEDGE_EVENT = "knowledge"  # a search of the knowledge bases: on the record, no webhook


class LiveRecords(EnginePart):
    def __init__(self, ground: Ground, live_calls: LiveCalls, reports: EndOfCallReports) -> None:
        super().__init__(ground)
        self._live_calls = live_calls
        self._reports = reports
        # Messages of running live calls stored as they happened (store_transcript_turn).
        self._live_messages: dict[str, list[CallMessage]] = {}

    def attach(self, call_id: str, live: LiveCall) -> None:
        """Route the call's commands to ``live``; its end-of-call report now waits for
        ``store_live_record`` (which the owner of ``live`` must call, even on failure)."""
        self._live_calls.attach(call_id, live)
        self._reports.expect_record(call_id)

    def continue_messages(self, call_id: str, messages: Sequence[CallMessage]) -> None:
        """A call resumed after a restart: its end-of-call report carries ``messages`` (stored
        by the previous run) before the ones its new conversation adds."""
        known = self._live_messages.get(call_id, [])
        seen = {message_key(message) for message in known}
        earlier = [message for message in messages if message_key(message) not in seen]
        self._live_messages[call_id] = [*earlier, *known]

    async def set_end_reason(self, call_id: str, reason: str) -> None:
        """Why the call is about to end, when voicedock ends it (before the hang-up)."""
        now = self._now()
        async with attempt(self._store, brief=True) as tx:
            call = await tx.get_call_for_update(call_id)
            if call is None or call.status is not CallStatus.IN_PROGRESS or call.end_reason:
                return  # an earlier reason (end-call, transfer) stands
            call.end_reason = reason
            call.updated_at = now
            await tx.update_call(call)

    async def store_answering_machine(self, call_id: str, verdict: JsonObject) -> None:
        """The answering-machine detection's verdict (``result``, ``evidence``), as soon as it
        is known: on the call and as an ``answering-machine`` call event (and webhook)."""
        now = self._now()
        async with attempt(self._store, brief=True) as tx:
            call = await tx.get_call_for_update(call_id)
            if call is None:
                return
            call.answering_machine = verdict
            call.updated_at = now
            await tx.update_call(call)
            await self._timeline.add_event(
                tx, call, CallEvent(call_id, EventType.ANSWERING_MACHINE.value, verdict, now)
            )

    async def store_consent(self, call_id: str, outcome: JsonObject) -> None:
        """The consent plan's outcome, as soon as its window decides it: on the call before
        the call can end, so that no reader sees the call ended without it (the record
        stores it again, and the outcome of a window the call's end closed)."""

        def decided(call: Call) -> None:
            call.consent = outcome

        await self._while_live(call_id, decided)

    async def store_flow(self, call_id: str, progress: FlowProgress) -> None:
        """The assistant's flow entered a node: the call's ``flow`` (its node, path and
        fields) as it is now, while the call is live (docs/flows.md)."""

        def moved(call: Call) -> None:
            call.flow = progress

        await self._while_live(call_id, moved)

    async def _while_live(self, call_id: str, change: Callable[[Call], None]) -> None:
        """``change`` written on the call, unless it ended (its end's record has the last
        word)."""
        now = self._now()
        async with attempt(self._store, brief=True) as tx:
            call = await tx.get_call_for_update(call_id)
            if call is None or call.status.terminal:
                return
            change(call)
            call.updated_at = now
            await tx.update_call(call)

    async def store_provider_switch(self, call_id: str, switch: JsonObject) -> None:
        """A turn of the call moved on to the next entry of a fallback plan: a
        ``provider-switch`` call event (and webhook)."""
        await self._store_event(call_id, EventType.PROVIDER_SWITCH, switch)

    async def store_menu_step(self, call_id: str, step: JsonObject) -> None:
        """A step of a phone menu's navigation (``calls/live/phone_menu.py``): a
        ``phone-menu`` call event."""
        await self._store_event(call_id, EventType.PHONE_MENU, step)

    async def store_knowledge(self, call_id: str, retrieval: JsonObject) -> None:
        """A search of the assistant's knowledge bases (``calls/tools/knowledge.py``): a
        ``knowledge`` call event (no webhook)."""
        await self._store_event(call_id, KNOWLEDGE_EVENT, retrieval)

    async def store_handoff(self, call_id: str, handoff: JsonObject) -> None:
        """A call placed with a squad went on with another member: a ``handoff`` call event
        (and webhook)."""
        await self._store_event(call_id, EventType.HANDOFF, handoff)

    async def _store_event(self, call_id: str, kind: str, data: JsonObject) -> None:
        now = self._now()
        async with attempt(self._store, brief=True) as tx:
            call = await tx.get_call_for_update(call_id)
            if call is not None:
                await self._timeline.add_event(tx, call, CallEvent(call_id, kind, data, now))

    async def store_transcript_turn(
        self, call_id: str, entry: TranscriptTurn, now: datetime | None = None
    ) -> None:
        """One final message, as it happens (``now``: when it was final): stored with the
        call's messages (``GET`` shows the transcript so far) and as a ``transcript`` call
        event."""
        now = now or self._now()
        async with attempt(self._store, brief=True) as tx:
            call = await tx.get_call_for_update(call_id)
            if call is None:
                return
            message = await tx.add_message(call_message(call_id, entry))
            event = CallEvent(call_id, "transcript", transcript_event_data(entry), now)
            await self._timeline.add_event(tx, call, event)
        self._live_messages.setdefault(call_id, []).append(message)  # committed

    async def store_live_record(
        self, call_id: str, record: LiveRecord | None, now: datetime | None = None
    ) -> None:
        """What the live conversation produced (``None``: it produced nothing) and, if the
        call has ended, its report. Handed in once per attached conversation."""
        self._live_calls.detach(call_id)
        now = now or self._now()
        # Stored while the call ran; a copy, so that a failed attempt leaves them as they were.
        messages = list(self._live_messages.get(call_id, []))
        async with attempt(self._store) as tx:
            call = await tx.get_call_for_update(call_id)
            self._reports.record_handed_in(call_id)
            if call is None:
                self._live_messages.pop(call_id, None)
                return
            if call.owner_node not in (None, self._node_id):
                # Another node settled the call while this one could not renew its lease
                # (docs/nodes.md): it ended and reported it; this node's late record of the
                # conversation would be a second, different end-of-call report.
                log.warning(
                    "call %s: settled by node %s meanwhile; this node's record of it is dropped",
                    mask_call_id(call_id),
                    call.owner_node,
                )
                self._live_messages.pop(call_id, None)
                return
            if record is not None:
                stored = {message_key(message) for message in messages}
                for message in record.messages(call_id):
                    if message_key(message) not in stored:
                        messages.append(await tx.add_message(message))
                messages.sort(key=lambda message: message.started_at or now)  # spoken order
                call.latency = record.latency
                if record.timings is not None:
                    call.timings = record.timings
                call.summary = record.summary
                call.analysis_result = record.analysis_result
                if record.recording_path is not None:
                    call.recording_path = record.recording_path
                    call.recording_duration_seconds = record.recording_duration_seconds
                if record.answering_machine is not None:
                    call.answering_machine = record.answering_machine
                if record.consent is not None:
                    call.consent = record.consent
                if record.ai_disclosure is not None:
                    call.ai_disclosure = record.ai_disclosure
                if record.flow is not None:
                    call.flow = record.flow
                if record.speech_usage is not None:
                    call.speech_usage = record.speech_usage
                if record.provider_switches is not None:
                    call.provider_switches = record.provider_switches
                call.updated_at = now
                await tx.update_call(call)
                if (memory := left_by(call)) is not None:  # the party's next calls told
                    await tx.insert_caller_memory(memory)
            await self._reports.recorded(tx, call, messages)
        self._live_messages.pop(call_id, None)  # committed
