"""What a live conversation hands to the engine: each message as it is final, then at the end
the whole transcript, latency and analysis.

Messages are stored as they happen (``LiveRecords.store_transcript_turn``,
``calls/engine/live_records.py``), so ``GET /calls/{id}`` shows the transcript so far from any
node sharing the store; the end-of-call record stores only the messages not stored yet
(``message_key`` tells them apart).

Kept free of the audio pipeline so the engine (and every node that only serves the API) does
not import it. ``LiveCallResult.record()`` in ``voicedock.calls.live.result`` builds one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from voicedock.domain.ai_disclosure import AiDisclosure
from voicedock.domain.flows import FlowProgress
from voicedock.domain.json import JsonObject
from voicedock.domain.records import CallMessage


class TranscriptTurn(Protocol):
    """One spoken message; times are UNIX epoch seconds (``pipeline.frames.TranscriptEntry``)."""

    @property
    def role(self) -> str: ...
    @property
    def content(self) -> str: ...
    @property
    def started_at(self) -> float: ...
    @property
    def ended_at(self) -> float: ...
    @property
    def interrupted(self) -> bool: ...
    @property
    def member(self) -> str | None: ...  # the squad's member whose dialogue it is
    @property
    def language(self) -> str | None: ...  # the language it was said in
    @property
    def node(self) -> str | None: ...  # the flow's node it ended in


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def call_message(call_id: str, turn: TranscriptTurn) -> CallMessage:
    return CallMessage(
        call_id=call_id,
        role=turn.role,
        content=turn.content,
        started_at=_utc(turn.started_at),
        ended_at=_utc(turn.ended_at),
        interrupted=turn.interrupted,
        member=turn.member,
        language=turn.language,
        flow_node=turn.node,
    )


def message_key(message: CallMessage) -> tuple[object, ...]:
    """What makes a message the same one, before and after it was stored."""
    return (message.role, message.content, message.started_at, message.interrupted)


def transcript_event_data(turn: TranscriptTurn) -> JsonObject:
    data: JsonObject = {
        "role": turn.role,
        "content": turn.content,
        "started_at": _utc(turn.started_at).isoformat(),
        "ended_at": _utc(turn.ended_at).isoformat(),
        "interrupted": turn.interrupted,
    }
    if turn.member is not None:
        data["member"] = turn.member
    if turn.language is not None:
        data["language"] = turn.language
    return data


@dataclass(slots=True)
class LiveRecord:
    end_reason: str
    transcript: Sequence[TranscriptTurn] = ()
    latency: list[JsonObject] = field(default_factory=list)  # one breakdown per turn
    timings: JsonObject | None = None  # the media leg after the answer (``Call.timings``)
    summary: str | None = None
    analysis_result: JsonObject | None = None  # summary, sentiment (0-10), method
    recording_path: str | None = None  # under the [recordings] directory (None: not recorded)
    recording_duration_seconds: float | None = None
    answering_machine: JsonObject | None = None  # the detection's verdict and evidence
    consent: JsonObject | None = None  # the consent plan's {"mode", "outcome", "at"}
    ai_disclosure: AiDisclosure | None = None  # how the required disclosure was given
    speech_usage: list[JsonObject] | None = None  # ``Call.speech_usage`` (``domain.usage``)
    provider_switches: int | None = None  # moves to a fallback plan's next entry
    flow: FlowProgress | None = None  # the assistant's flow: its node, path and fields

    def messages(self, call_id: str) -> list[CallMessage]:
        """In spoken order (by when each message started)."""
        turns = sorted(self.transcript, key=lambda turn: turn.started_at)
        return [call_message(call_id, turn) for turn in turns]
