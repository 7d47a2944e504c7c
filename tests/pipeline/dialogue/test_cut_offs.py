"""Early cut-offs heard on a live call's events (``pipeline/dialogue/cut_offs.py``): the caller
judged finished and speaking again within a second is told (``CallerCutOff``), once per
judgement, by the same rule ``voicedock eval turns`` counts on recordings; the turn engine's
record of the turn that takes the caller's words marks it."""

from __future__ import annotations

import pytest

from voicedock.pipeline.dialogue.cut_offs import CutOffsSince, CutOffWatch
from voicedock.pipeline.dialogue.events import CallerCutOff, CallEvents, SpeechEnded, SpeechStarted
from voicedock.pipeline.dialogue.turn_engine import TurnEngine, TurnParts
from voicedock.pipeline.hearing.cut_off import RESUME_WITHIN_MS

from ..fakes import FakeLlm, FakeSink, FakeStt, FakeTts
from ..test_turn_engine import config, speak, until

pytestmark = pytest.mark.unit


_WATCHES: list[CutOffWatch] = []  # the bus holds a watch weakly: its maker keeps it


def watched() -> tuple[CallEvents, list[float]]:
    events, told = CallEvents("test"), []
    _WATCHES.append(CutOffWatch(events))
    events.subscribe(CallerCutOff, lambda cut: told.append(cut.after_ms))
    return events, told


def test_speech_within_a_second_of_the_end_of_turn_is_an_early_cut_off() -> None:
    events, told = watched()
    events.emit(SpeechEnded(100.0))
    events.emit(SpeechStarted(100.4))  # 400 ms later: the caller had not finished
    events.emit(SpeechEnded(102.0))
    events.emit(SpeechStarted(102.0 + RESUME_WITHIN_MS / 1000))  # at the window's edge: still
    assert told == [400.0, 1000.0]


def test_a_new_turn_after_the_window_or_without_a_judgement_is_not() -> None:
    events, told = watched()
    events.emit(SpeechStarted(99.0))  # the caller's first words: nothing was judged yet
    events.emit(SpeechEnded(100.0))
    events.emit(SpeechStarted(101.2))  # 1,200 ms later: a turn of its own
    events.emit(SpeechEnded(102.0))
    events.emit(SpeechStarted(102.3))  # cut off ...
    events.emit(SpeechStarted(102.6))  # ... once: this judgement was resumed after already
    assert told == [300.0]


def test_what_was_told_is_taken_once_by_the_next_turns_record() -> None:
    events, _ = watched()
    since = CutOffsSince(events)
    events.emit(SpeechEnded(100.0))
    events.emit(SpeechStarted(100.2))
    events.emit(SpeechEnded(101.0))
    events.emit(SpeechStarted(101.5))
    assert (since.take(), since.take()) == (2, 0)


async def test_the_turn_engine_marks_the_turn_the_cut_off_words_went_on_in() -> None:
    """The caller pauses long enough to be judged finished and goes on 300 ms later: their
    words are one turn, and its latency record counts the cut-off."""
    now = [100.0]
    stt = FakeStt(["I would like a table for two."] * 2, delay=0.2)
    llm = FakeLlm()
    tts, sink = FakeTts(), FakeSink()
    llm.replies = [["For when?"], ["For when?"]]
    events, told = watched()
    parts = TurnParts(
        stt=stt, llm=llm, tts=tts, sink=sink, events=events, wall_clock=lambda: now[0]
    )
    async with TurnEngine(parts, config()) as conv:
        speak(conv)  # judged finished after the pause (endpointing's end silence)
        await until(lambda: len(stt.calls) == 1)  # transcribing what was said so far
        now[0] += 0.3
        speak(conv)  # ... and goes on: the first turn's reply is stopped, its words merged
        await until(lambda: len(stt.calls) == 2)  # the merged audio, transcribed again
        await until(lambda: len(sink.handles) >= 1)
        sink.play_all()
        await until(lambda: len(conv.latencies) == 1)
        sink.play_all()
    assert told == [300.0]
    assert [turn.early_cut_offs for turn in conv.latencies] == [1]
    users = [entry.content for entry in conv.transcript if entry.role == "user"]
    assert users == ["I would like a table for two."]
