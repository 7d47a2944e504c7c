"""The caller's keypad in a conversation: the keys of one entry become ONE user turn
("Keypad: 1234#") that the model answers; a key barges in like speech; a spoken turn and an
entry that overlap are one turn, in the order they started, in the model's context and the
transcript alike; nothing pressed is lost when the call ends."""

from __future__ import annotations

import asyncio
import time

import pytest

from voicedock.pipeline.dialogue.turn_engine import TurnEngine, TurnParts
from voicedock.pipeline.frames import TranscriptEntry
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.hearing.keypad import KeypadPlan

from .fakes import FakeLlm, FakeSink, FakeStt, FakeTts, told_into
from .synth import frames, silence, voiced
from .test_turn_engine import config, speak, until

pytestmark = pytest.mark.unit


def press(conv: TurnEngine, keys: str) -> None:
    for key in keys:
        conv.feed_dtmf(key)


def said(conv: TurnEngine) -> list[tuple[str, str]]:
    return [(e.role, e.content) for e in conv.transcript]


def user_messages(llm: FakeLlm, call: int = 0) -> list[str]:
    return [m.content for m in llm.calls[call] if m.role == "user"]


async def test_the_terminator_makes_one_user_turn_the_model_answers() -> None:
    llm, sink = FakeLlm(["Thank you."]), FakeSink(instant=True)
    reported: list[TranscriptEntry] = []
    async with TurnEngine(
        TurnParts(stt=FakeStt(), llm=llm, tts=FakeTts(), sink=sink, events=told_into(reported)),
        config(),
    ) as conv:
        press(conv, "1234#")
        await until(lambda: len(conv.transcript) == 2)
    assert said(conv) == [("user", "Keypad: 1234#"), ("assistant", "Thank you.")]
    assert len(llm.calls) == 1
    assert user_messages(llm) == ["Keypad: 1234#"]
    assert not any("pressed" in m.content for m in llm.calls[0])
    assert [e.content for e in reported] == ["Keypad: 1234#", "Thank you."]


async def test_the_timeout_after_the_last_key_ends_the_entry() -> None:
    llm, sink = FakeLlm(["Got it."]), FakeSink(instant=True)
    plan = KeypadPlan(timeout_s=0.5, terminator=None)
    cfg = config(keypad=plan)
    async with TurnEngine(TurnParts(stt=FakeStt(), llm=llm, tts=FakeTts(), sink=sink), cfg) as conv:
        press(conv, "12")
        await asyncio.sleep(0.3)
        press(conv, "#")  # no terminator: a key like any other, and it moves the deadline
        await asyncio.sleep(0.3)
        assert conv.transcript == []  # 0.6 s after the first key, 0.3 s after the last
        started = time.monotonic()
        await until(lambda: len(conv.transcript) == 2, timeout=2)
        waited = time.monotonic() - started
    assert 0.1 <= waited <= 0.5
    assert said(conv)[0] == ("user", "Keypad: 12#")
    keys = conv.transcript[0]
    assert 0.5 <= keys.ended_at - keys.started_at <= 1.0  # the first key to the deadline
    assert user_messages(llm) == ["Keypad: 12#"]


async def test_max_digits_ends_the_entry_and_the_next_key_starts_another() -> None:
    llm, sink = FakeLlm(["One.", "Two."]), FakeSink(instant=True)
    cfg = config(keypad=KeypadPlan(timeout_s=0.5, max_digits=3))
    async with TurnEngine(TurnParts(stt=FakeStt(), llm=llm, tts=FakeTts(), sink=sink), cfg) as conv:
        press(conv, "123")
        await until(lambda: len(conv.transcript) == 2)
        press(conv, "4")
        await until(lambda: len(conv.transcript) == 4, timeout=3)
    assert said(conv) == [
        ("user", "Keypad: 123"),
        ("assistant", "One."),
        ("user", "Keypad: 4"),
        ("assistant", "Two."),
    ]
    assert user_messages(llm, 1) == ["Keypad: 123", "Keypad: 4"]


async def test_a_key_barges_in_on_the_assistant_like_speech() -> None:
    stt, tts, sink = FakeStt(["Read me the menu."]), FakeTts(ms_per_char=20), FakeSink()
    llm = FakeLlm(["Press one for sales. Press two for support.", "Support it is."])
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=tts, sink=sink), config()) as conv:
        speak(conv)
        await until(lambda: len(sink.handles) == 2)
        sink.advance(sink.handles[0].duration_ms / 2)  # half of the first sentence heard
        press(conv, "2")
        await until(lambda: all(h.flushed for h in sink.handles[:2]))
        assert not conv.assistant_audible
        press(conv, "#")
        await until(lambda: len(llm.calls) == 2)
        sink.play_all()
        await until(lambda: len(conv.transcript) == 4)
    cut = conv.transcript[1]
    assert (cut.role, cut.interrupted) == ("assistant", True)
    assert cut.content == "Press one"
    assert said(conv)[2:] == [("user", "Keypad: 2#"), ("assistant", "Support it is.")]
    # The model sees what was heard of the menu, then the keys.
    assert [m.content for m in llm.calls[1][1:]] == ["Read me the menu.", cut.content, "Keypad: 2#"]


async def test_a_spoken_turn_ending_during_an_entry_takes_the_keys_first() -> None:
    stt, sink = FakeStt(["Sorry, which number?"]), FakeSink(instant=True)
    llm = FakeLlm(["Your card number, please.", "Thanks."])
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=sink), config()) as conv:
        press(conv, "12")
        await asyncio.sleep(0.05)
        speak(conv)
        await until(lambda: len(conv.transcript) == 3)
        press(conv, "34#")
        await until(lambda: len(conv.transcript) == 5)
    assert said(conv) == [
        ("user", "Keypad: 12"),
        ("user", "Sorry, which number?"),
        ("assistant", "Your card number, please."),
        ("user", "Keypad: 34#"),
        ("assistant", "Thanks."),
    ]
    assert len(llm.calls) == 2  # one reply for the keys and the words together
    assert user_messages(llm) == ["Keypad: 12", "Sorry, which number?"]


async def test_a_key_while_the_caller_talks_follows_the_words_in_one_turn() -> None:
    stt, sink = FakeStt(["My card number is"]), FakeSink(instant=True)
    llm = FakeLlm(["Thank you."])
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=sink), config()) as conv:
        for frame in frames(voiced(400)):
            conv.feed_audio(frame)  # the caller is talking...
        await asyncio.sleep(0.2)
        press(conv, "42")  # ...and presses keys meanwhile
        await asyncio.sleep(0.05)
        for frame in frames(voiced(200) + silence(400)):
            conv.feed_audio(frame)  # the spoken turn ends: the entry ends with it
        await until(lambda: len(conv.transcript) == 3)
    assert said(conv) == [
        ("user", "My card number is"),
        ("user", "Keypad: 42"),
        ("assistant", "Thank you."),
    ]
    assert len(llm.calls) == 1
    assert user_messages(llm) == ["My card number is", "Keypad: 42"]


async def test_keys_and_no_words_still_get_their_answer() -> None:
    stt, sink = FakeStt([""]), FakeSink(instant=True)  # a cough: no words
    llm = FakeLlm(["Noted."])
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=sink), config()) as conv:
        press(conv, "7")
        await asyncio.sleep(0.05)
        speak(conv)
        await until(lambda: len(conv.transcript) == 2)
    assert said(conv) == [("user", "Keypad: 7"), ("assistant", "Noted.")]


async def test_words_whose_reply_a_key_stopped_come_before_the_entry() -> None:
    stt = FakeStt(["My account number is"], delay=0.3)
    llm, sink = FakeLlm(["Account found."]), FakeSink(instant=True)
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=sink), config()) as conv:
        speak(conv)
        await until(lambda: len(stt.calls) == 1)  # being transcribed
        press(conv, "5591#")  # the first key stops the reply to the words, not their hearing
        await until(lambda: len(conv.transcript) == 3)
    assert said(conv) == [
        ("user", "My account number is"),
        ("user", "Keypad: 5591#"),
        ("assistant", "Account found."),
    ]
    assert len(llm.calls) == 1
    assert user_messages(llm) == ["My account number is", "Keypad: 5591#"]
    assert len(stt.calls) == 1


async def test_keys_pressed_when_the_call_ends_are_recorded_not_answered() -> None:
    llm, sink = FakeLlm(), FakeSink(instant=True)
    reported: list[TranscriptEntry] = []
    conv = TurnEngine(
        TurnParts(stt=FakeStt(), llm=llm, tts=FakeTts(), sink=sink, events=told_into(reported)),
        config(),
    )
    async with conv:
        press(conv, "98")
        await asyncio.sleep(0.1)
        assert conv.history == []  # the entry is still open
    assert said(conv) == [("user", "Keypad: 98")]
    assert llm.calls == []
    assert [e.content for e in reported] == ["Keypad: 98"]


async def test_a_key_counts_as_the_caller_not_being_silent() -> None:
    endpointing = EndpointingConfig(
        end_silence_ms=300, silence_timeout_ms=600, max_duration_ms=None
    )
    llm, sink = FakeLlm(["Go on."]), FakeSink(instant=True)
    cfg = config(endpointing=endpointing, silence_timeout_message="Bye.")
    async with TurnEngine(TurnParts(stt=FakeStt(), llm=llm, tts=FakeTts(), sink=sink), cfg) as conv:
        speak(conv, speech_ms=0, pause_ms=500)  # 0.5 s of silence
        press(conv, "1")
        await asyncio.sleep(0.05)
        speak(conv, speech_ms=0, pause_ms=500)  # 0.5 s more: 1 s, but 0.5 s since the key
        await asyncio.sleep(0.1)
        assert conv.end_reason is None
        speak(conv, speech_ms=0, pause_ms=200)
        assert await asyncio.wait_for(conv.wait_ended(), 2) == "silence-timeout"
