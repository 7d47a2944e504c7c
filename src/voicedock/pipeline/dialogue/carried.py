"""The call so far, carried to the dialogue that goes on with it: a pipeline taking over a
failed speech-to-speech session (``pipeline/realtime_fallback.py``), a squad's member the call
was handed over to (``pipeline/squad_dialogue.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from voicedock.pipeline.frames import ChatMessage, TranscriptEntry, supervisor_note

TOOL_RESULT_NOTE = "A tool called earlier in this call returned:"
CARRIED_NOTE = "The call so far, before it was handed over to you:"
_SPEAKERS = {"user": "Caller", "assistant": "Assistant", "system": "Note"}


def carried_history(transcript: Sequence[TranscriptEntry]) -> tuple[ChatMessage, ...]:
    """The call so far as the model that goes on with it sees it (a pipeline after a failed
    speech-to-speech session, the member of a squad the call was handed over to): the
    caller's and the assistant's messages, the context given, a supervisor's whispers and
    the tools' results as notes), in the order said (``transcript``: in any order)."""
    carried: list[ChatMessage] = []
    for entry in sorted(transcript, key=_started_at):
        match entry.role:
            case "user" | "assistant" | "system":
                carried.append(ChatMessage(entry.role, entry.content))
            case "supervisor":
                carried.append(ChatMessage("system", supervisor_note(entry.content)))
            case "tool":
                carried.append(ChatMessage("system", f"{TOOL_RESULT_NOTE} {entry.content}"))
    return tuple(carried)


def _started_at(entry: TranscriptEntry) -> float:
    return entry.started_at


def carried_note(carried: Sequence[ChatMessage]) -> str:
    """The call so far as one note for a model that takes no earlier turns (a speech-to-speech
    session): each message on a line of its own, by who said it."""
    lines = [f"{_SPEAKERS.get(m.role, m.role)}: {m.content}" for m in carried if m.content]
    return "\n".join([CARRIED_NOTE, *lines])
