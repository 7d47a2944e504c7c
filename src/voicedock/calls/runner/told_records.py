"""What a live call tells on its events that its record keeps, and the write that keeps each:
the voicemail verdict, a phone menu's steps, a knowledge search, the consent outcome, a handoff,
a provider switch, the flow's node (``calls/engine/live_records.py`` writes them; the runner
hands each write to the call's backlog, in order). The kept messages of the transcript are
written by the runner itself (they carry the call's turn state)."""

from __future__ import annotations

from functools import partial

from voicedock.calls.engine.live_records import LiveRecords
from voicedock.domain.json import JsonObject
from voicedock.pipeline.dialogue.events import (
    AnsweringMachineHeard,
    CallEvent,
    ConsentDecided,
    FlowMoved,
    HandedOver,
    KnowledgeRetrieved,
    MenuStep,
    ProviderSwitched,
)
from voicedock.store.backlog import Work

# The kinds of event whose write this module makes (each on a listener of its own).
RECORDED: tuple[type[CallEvent], ...] = (
    AnsweringMachineHeard,
    MenuStep,
    KnowledgeRetrieved,
    ConsentDecided,
    HandedOver,
    ProviderSwitched,
)


def record_write(records: LiveRecords, call_id: str, event: CallEvent) -> tuple[Work, str] | None:
    """The write that keeps ``event`` on the call's record, and what it is (for the logs);
    None for an event the record does not keep."""
    match event:
        case AnsweringMachineHeard(verdict):
            write = partial(records.store_answering_machine, call_id, verdict)
            return write, "answering-machine verdict"
        case MenuStep(step):
            return partial(records.store_menu_step, call_id, step), "phone menu step"
        case KnowledgeRetrieved(retrieval):
            return partial(records.store_knowledge, call_id, retrieval), "knowledge retrieval"
        case ConsentDecided(outcome):
            return partial(records.store_consent, call_id, outcome), "consent outcome"
        case HandedOver(source, to, reason):
            data: JsonObject = {"from": source, "to": to, "reason": reason}
            return partial(records.store_handoff, call_id, data), "handoff"
        case FlowMoved(progress):
            return partial(records.store_flow, call_id, progress), "flow's node"
        case ProviderSwitched(switch):
            return partial(
                records.store_provider_switch, call_id, switch.event()
            ), "provider switch"
    return None


__all__ = ["RECORDED", "record_write"]
