"""The call so far, carried to the dialogue that goes on with it: a pipeline taking over a
failed speech-to-speech session (``pipeline/dialogue/realtime_fallback.py``), a squad's member the
call was handed over to (``pipeline/dialogue/squad_dialogue.py``), whole or summarised
(``carried_summary``, for a member whose squad says so).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from voicedock.pipeline.analysis.llm_answer import bounded_answer
from voicedock.pipeline.frames import ChatMessage, TranscriptEntry, supervisor_note
from voicedock.pipeline.providers.base import Llm, ProviderError
from voicedock.pipeline.providers.rule_based import RuleBasedPolicy

log = logging.getLogger("voicedock.pipeline")

TOOL_RESULT_NOTE = "A tool called earlier in this call returned:"
CARRIED_NOTE = "The call so far, before it was handed over to you:"
SUMMARY_PROMPT = (
    "You summarise a phone call so far for the assistant who takes it over next. In at most "
    "five short sentences: who the caller is, what they want, what they were told and what "
    "is still open. Answer with the summary alone."
)
SUMMARY_NOTE = "A summary of the call so far, before it was handed over to you:"
# The summary's bounds: how long its model may take (the caller waits), how long it may be;
# without it, the last messages are carried instead.
SUMMARY_TIMEOUT_S = 4.0
MAX_SUMMARY_CHARS = 2000
FALLBACK_MESSAGES = 6
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


async def carried_summary(
    carried: Sequence[ChatMessage], llm: Llm | None, *, timeout_s: float = SUMMARY_TIMEOUT_S
) -> tuple[ChatMessage, ...]:
    """The call so far as a short summary (one request to ``llm``) for the model that goes on
    with it, as one note; the last ``FALLBACK_MESSAGES`` messages when there is no model
    that can summarise, or it fails, is too slow or answers too much."""
    if not carried:
        return ()
    if llm is not None and not isinstance(llm, RuleBasedPolicy):
        prompt = (ChatMessage("system", SUMMARY_PROMPT), ChatMessage("user", carried_note(carried)))
        try:
            async with asyncio.timeout(timeout_s):
                summary = await _answer(llm, prompt)
        except TimeoutError:
            log.warning("the call's summary took too long; carrying its last messages")
        except (ProviderError, ValueError) as exc:
            log.warning(
                "the call's summary failed (%s); carrying its last messages", type(exc).__name__
            )
        else:
            return (ChatMessage("system", f"{SUMMARY_NOTE} {summary}"),)
    return tuple(carried[-FALLBACK_MESSAGES:])


async def _answer(llm: Llm, prompt: Sequence[ChatMessage]) -> str:
    summary = (await bounded_answer(llm, prompt, MAX_SUMMARY_CHARS)).strip()
    if not summary:
        raise ValueError("the summary is empty")
    return summary
