"""What the turn engine tells on the call's events, in the order it decides it: the caller's
speech and turns, the replies started and cut by a barge-in, each message (``MessageAdded``)."""

from __future__ import annotations

import pytest

from voicedock.pipeline.dialogue.events import (
    CallEvent,
    CallEvents,
    MessageAdded,
    ReplyInterrupted,
    ReplyStarted,
    SpeechEnded,
    SpeechStarted,
    TurnCommitted,
)
from voicedock.pipeline.dialogue.turn_engine import TurnEngine, TurnParts

from .fakes import FakeLlm, FakeSink, FakeStt, FakeTts
from .synth import frames, silence, voiced
from .test_turn_engine import config, speak, until

pytestmark = pytest.mark.unit

KINDS = (SpeechStarted, SpeechEnded, TurnCommitted, ReplyStarted, ReplyInterrupted, MessageAdded)


def recorded() -> tuple[CallEvents, list[CallEvent]]:
    events, told = CallEvents("test"), []
    for kind in KINDS:
        events.subscribe(kind, told.append)
    return events, told


def named(told: list[CallEvent]) -> list[str]:
    shown = []
    for event in told:
        match event:
            case MessageAdded(entry):
                shown.append(f"{entry.role}:{entry.content}{'~' if entry.interrupted else ''}")
            case ReplyInterrupted(messages):
                shown.append(f"ReplyInterrupted({messages})")
            case TurnCommitted(spoken, keyed):
                shown.append(f"TurnCommitted({spoken}, {keyed})")
            case _:
                shown.append(type(event).__name__)
    return shown


async def test_a_barge_in_is_told_between_the_callers_speech_and_the_cut_message() -> None:
    stt, tts, sink = FakeStt(["Tell me everything.", "Stop."]), FakeTts(ms_per_char=20), FakeSink()
    llm = FakeLlm(["One two three four five six seven eight. Nine ten eleven twelve.", "Ok."])
    events, told = recorded()
    parts = TurnParts(stt=stt, llm=llm, tts=tts, sink=sink, events=events)
    async with TurnEngine(parts, config()) as conv:
        speak(conv)
        await until(lambda: len(sink.handles) == 2)
        sink.advance(sink.handles[0].duration_ms / 2)  # half of the first sentence heard
        for frame in frames(voiced(400)):  # the caller talks over it, as the frames come
            conv.feed_audio(frame)
        await until(lambda: any(isinstance(e, ReplyInterrupted) for e in told))
        for frame in frames(silence(400)):
            conv.feed_audio(frame)
        await until(lambda: len(conv.transcript) >= 3)
        sink.play_all()
        await until(lambda: len(conv.transcript) == 4)
        await until(lambda: len([e for e in told if isinstance(e, MessageAdded)]) == 4)
    assert named(told) == [
        "SpeechStarted",
        "SpeechEnded",
        "user:Tell me everything.",  # the caller's words, then the turn given to the model
        "TurnCommitted(True, False)",
        "ReplyStarted",
        "SpeechStarted",  # the caller takes the floor: the reply stops, kept as heard ...
        "assistant:One two three four~",
        "ReplyInterrupted(1)",  # ... and the barge-in is told
        "SpeechEnded",
        "user:Stop.",
        "TurnCommitted(True, False)",
        "ReplyStarted",
        "assistant:Ok.",
    ]
    started = [e for e in told if isinstance(e, SpeechStarted | ReplyStarted)]
    assert [e.at for e in started] == sorted(e.at for e in started)


async def test_speech_with_nothing_to_cut_is_no_barge_in() -> None:
    """The caller speaking while the assistant is silent: speech, a turn, no interruption."""
    events, told = recorded()
    parts = TurnParts(
        stt=FakeStt(["Hello?"]), llm=FakeLlm(["Hi."]), tts=FakeTts(), sink=FakeSink(instant=True),
        events=events,
    )  # fmt: skip
    async with TurnEngine(parts, config()) as conv:
        speak(conv)
        await until(lambda: len(conv.transcript) == 2)
    assert not [e for e in told if isinstance(e, ReplyInterrupted)]
    assert named(told) == [
        "SpeechStarted",
        "SpeechEnded",
        "user:Hello?",
        "TurnCommitted(True, False)",
        "ReplyStarted",
        "assistant:Hi.",
    ]
