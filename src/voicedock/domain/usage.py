"""What a call uses, and how it is counted: connected and billable time, speech providers.

- **Connected**: from the answer (``Call.started_at``) to the end (``Call.ended_at``), each
  truncated to the millisecond; a call never answered is connected 0 s.
- **Billable seconds**: the connected time rounded up per started second (1/1 granularity, as
  a trunk bills): 0 ms -> 0, 1 ms -> 1, 10.000 s -> 10, 10.001 s -> 11.
- **Speech** (``Call.speech_usage``, stored with the call when it ends): one entry per engine
  and provider the call used. STT: the seconds of caller audio transcribed (the spoken user
  turns, from the start to the end of each). TTS: the characters the call spoke (the
  assistant's messages as the transcript holds them; an interrupted message counts what was
  played). A synthesis served from the node's cache still counts: it is what the call spoke.
  Each message counts for the provider that transcribed or spoke it (a fallback plan's entry
  that took over: its own entry), the engine's own provider always listed first.

The store aggregates the same definitions in SQL (``store/sql/usage.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from voicedock.domain.json import JsonObject, JsonValue
from voicedock.domain.records import Call, CallMessage

STT = "stt"
TTS = "tts"
MAX_RANGE_DAYS = 93  # the longest GET /usage range, first to last day inclusive
GROUP_BY = ("day", "assistant", "number", "campaign", "assistant_version")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def connected_ms(started_at: datetime | None, ended_at: datetime | None) -> int:
    """Milliseconds from the answer to the end, each truncated to the millisecond (0: never
    answered, or not ended)."""
    if started_at is None or ended_at is None:
        return 0
    return max(0, _ms(ended_at) - _ms(started_at))


def _ms(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def billable_seconds(milliseconds: int) -> int:
    """Connected time rounded up per started second."""
    return (milliseconds + 999) // 1000


@dataclass(frozen=True, slots=True)
class SpokenTurn:
    role: str  # "user" | "assistant"
    content: str
    started_at: float  # seconds (any common origin)
    ended_at: float
    provider: str | None = None  # who transcribed or spoke it (None: the engine's own)


def speech_usage(
    turns: Iterable[SpokenTurn], *, stt_provider: str | None, tts_provider: str | None
) -> list[JsonObject]:
    """``Call.speech_usage`` of a conversation: STT seconds and TTS characters per provider,
    the engine's own (``stt_provider``, ``tts_provider``) first, then the others its turns
    name in the order they were first used."""
    seconds: dict[str, float] = {stt_provider: 0.0} if stt_provider else {}
    characters: dict[str, int] = {tts_provider: 0} if tts_provider else {}
    for turn in turns:
        if turn.role == "user" and (name := turn.provider or stt_provider):
            seconds[name] = seconds.get(name, 0.0) + max(0.0, turn.ended_at - turn.started_at)
        elif turn.role == "assistant" and (name := turn.provider or tts_provider):
            characters[name] = characters.get(name, 0) + len(turn.content)
    entries: list[JsonObject] = [
        {"kind": STT, "provider": name, "seconds": round(total, 3)}
        for name, total in seconds.items()
    ]
    entries += [
        {"kind": TTS, "provider": name, "characters": total} for name, total in characters.items()
    ]
    return entries


def call_usage(call: Call, messages: Sequence[CallMessage] = ()) -> JsonObject:
    """The ``usage`` object of a call record (``GET /calls/{id}``, the end-of-call report);
    a call placed with a squad adds its connected seconds split between its members
    (``members``, from its ``messages``)."""
    ms = connected_ms(call.started_at, call.ended_at)
    usage: JsonObject = {
        "connected_seconds": ms / 1000,
        "billable_seconds": billable_seconds(ms),
        "stt": [
            {"provider": e["provider"], "audio_seconds": _number(e.get("seconds"))}
            for e in call.speech_usage or []
            if e.get("kind") == STT
        ],
        "tts": [
            {"provider": e["provider"], "characters": int(_number(e.get("characters")))}
            for e in call.speech_usage or []
            if e.get("kind") == TTS
        ],
    }
    if call.squad is not None:
        usage["members"] = member_seconds(call, messages)
    return usage


@dataclass(frozen=True, slots=True)
class MemberPart:
    """The part one member of a squad had of a call: its connected milliseconds."""

    member: str
    assistant_id: str | None  # its saved assistant (None: a configuration of its own)
    connected_ms: int


def member_parts(call: Call, messages: Sequence[CallMessage]) -> list[MemberPart]:
    """The connected time of a call placed with a squad, split between the members that had
    it, in the order they had it: each from its first message (the first member from the
    answer) to the next member's first message (the last to the end)."""
    squad = call.squad
    assert squad is not None
    if call.started_at is None or call.ended_at is None:
        return []
    spans: list[tuple[str, datetime]] = [(squad.members[0].name, call.started_at)]
    for message in messages:
        if message.member is not None and message.member != spans[-1][0]:
            spans.append((message.member, message.started_at or spans[-1][1]))
    ends = [at for _, at in spans[1:]] + [call.ended_at]
    split: dict[str, int] = {}
    for (member, start), end in zip(spans, ends, strict=True):
        split[member] = split.get(member, 0) + connected_ms(start, end)
    ids = {m.name: m.assistant_id for m in squad.members}
    return [MemberPart(member, ids.get(member), ms) for member, ms in split.items()]


def member_seconds(call: Call, messages: Sequence[CallMessage]) -> list[JsonValue]:
    """``usage.members`` of a call placed with a squad (``member_parts``)."""
    return [
        {"member": p.member, "assistant_id": p.assistant_id, "seconds": p.connected_ms / 1000}
        for p in member_parts(call, messages)
    ]


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
