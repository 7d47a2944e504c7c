"""Barge-in on words, not noises: the caller's speech over the assistant holds its audio, and
the words decide (``pipeline/dialogue/words_decide.py``, through the turn engine with the fake
media)."""

from __future__ import annotations

import numpy as np
import pytest

from voicedock.pipeline.dialogue.events import ReplyInterrupted
from voicedock.pipeline.dialogue.turn_engine import TurnEngine, TurnParts
from voicedock.pipeline.dialogue.words_decide import RESUME_OVERLAP_MS, BargeInConfig, words_of
from voicedock.pipeline.hearing.voicing import pitched_ms

from .fakes import FakeLlm, FakeSink, FakeStt, FakeTts
from .synth import frames, silence, voiced
from .test_turn_engine import config, speak, until
from .test_turn_engine_events import named, recorded

pytestmark = pytest.mark.unit

ON_WORDS = BargeInConfig(on_words=True)
REPLY = "One two three four five six seven eight. Nine ten eleven twelve."


@pytest.mark.parametrize(
    "said",
    ["Mm-hmm.", "mhm", "Uh-huh, yeah.", "Okay.", "Right, right.", "Ja, genau.", "", "[coughing]"],
)
def test_backchannels_and_noises_do_not_stand(said: str) -> None:
    assert not ON_WORDS.stands(said, voiced_ms=600)


@pytest.mark.parametrize("said", ["Sorry, one more question", "No.", "Yes please", "Wait"])
def test_words_stand(said: str) -> None:
    assert ON_WORDS.stands(said, voiced_ms=600)


def test_a_sound_shorter_than_the_minimum_is_a_noise_whatever_was_transcribed() -> None:
    assert not ON_WORDS.stands("Stop", voiced_ms=ON_WORDS.min_voiced_ms - 20)


def test_the_operators_list_replaces_the_defaults() -> None:
    own = BargeInConfig(on_words=True, backchannels=("d'accord", "oui"))
    assert not own.stands("Oui, d'accord.", 600)
    assert own.stands("Yeah.", 600)
    assert words_of("Mm-hmm, (laughs) OK!") == ["mm", "hmm", "ok"]


def cough(ms: int = 400, seed: int = 1) -> bytes:
    """A cough's like: a burst of noise, no pitch, loud enough for the VAD."""
    rng = np.random.default_rng(seed)
    t = np.arange(8000 * ms // 1000) / 8000
    burst = np.minimum(1.0, t / 0.01) * np.exp(-t / 0.2) * rng.standard_normal(t.size)
    return (burst / np.abs(burst).max() * 14000).astype("<i2").tobytes()


def test_a_voice_is_pitched_a_noise_burst_is_not() -> None:
    assert pitched_ms(voiced(400), 8000) >= 300
    assert pitched_ms(cough(), 8000) == 0
    assert pitched_ms(voiced(400), 8000, enough_ms=60) == 60


async def _over_the_reply(
    said: str, messages: int, sound: bytes | None = None
) -> tuple[TurnEngine, FakeSink, FakeLlm, list[str], float]:
    """The caller asks, hears half of the reply's first sentence, then says ``said`` over it
    (``sound``: its audio, a voice by default); returns once the transcript holds
    ``messages`` and all was played."""
    stt, tts, sink = FakeStt(["Tell me everything.", said]), FakeTts(ms_per_char=20), FakeSink()
    llm = FakeLlm([REPLY, "Of course."])
    events, told = recorded()
    parts = TurnParts(stt=stt, llm=llm, tts=tts, sink=sink, events=events)
    conv = TurnEngine(parts, config(barge_in=ON_WORDS))
    async with conv:
        speak(conv)
        await until(lambda: len(sink.handles) == 2)
        first = sink.handles[0].duration_ms
        sink.advance(first / 2)  # half of the first sentence heard
        for frame in frames(voiced(400) if sound is None else sound):
            conv.feed_audio(frame)
        await until(lambda: sink.handles[0].flushed)  # stopped while the caller speaks
        assert not any(isinstance(e, ReplyInterrupted) for e in told)
        for frame in frames(silence(400)):
            conv.feed_audio(frame)
        await until(lambda: len(stt.calls) == 2 and not conv._floor.held)

        def over() -> bool:
            sink.play_all()
            return len(conv.transcript) >= messages and not conv._assistant_audio.speeches

        await until(over)
    return conv, sink, llm, named(told), first


async def test_mm_hm_over_the_reply_lets_it_go_on_where_it_stopped() -> None:
    conv, sink, llm, told, first = await _over_the_reply("Mm-hmm.", 2)
    assert [(e.role, e.content, e.interrupted) for e in conv.transcript] == [
        ("user", "Tell me everything.", False),
        ("assistant", REPLY, False),  # the whole message, not cut
    ]
    assert "ReplyInterrupted(1)" not in told
    assert len(llm.calls) == 1  # "mm-hm" is no turn for the model
    assert [m.content for m in conv.history] == ["Tell me everything.", REPLY]
    # Played again from just before where it stopped: the unheard half and the overlap.
    again = sink.handles[2]
    assert again.duration_ms == pytest.approx(first / 2 + RESUME_OVERLAP_MS, abs=1)
    assert not sink.handles[1].played_ms  # the second sentence was flushed unheard ...
    assert sink.handles[3].duration_ms == sink.handles[1].duration_ms  # ... and queued again


async def test_a_noise_the_recognizer_finds_no_words_in_does_not_stop_it() -> None:
    conv, _sink, llm, _told, _first = await _over_the_reply("", 2)
    assert [e.interrupted for e in conv.transcript] == [False, False]
    assert conv.transcript[1].content == REPLY
    assert len(llm.calls) == 1


async def test_a_cough_the_recognizer_writes_a_word_for_does_not_stop_it() -> None:
    """Whisper may write "I" for a burst of noise: without a pitch it is no word."""
    conv, _sink, llm, told, _first = await _over_the_reply("I", 2, sound=cough())
    assert [e.interrupted for e in conv.transcript] == [False, False]
    assert "ReplyInterrupted(1)" not in told
    assert len(llm.calls) == 1


async def test_real_words_interrupt_as_ever_and_are_the_callers_turn() -> None:
    conv, _sink, llm, told, _first = await _over_the_reply("Sorry, one more question", 4)
    cut = conv.transcript[1]
    assert (cut.role, cut.content, cut.interrupted) == ("assistant", "One two three four", True)
    assert conv.transcript[2].content == "Sorry, one more question"
    assert "ReplyInterrupted(1)" in told
    assert [m.content for m in llm.calls[1][1:]] == [
        "Tell me everything.",
        "One two three four",
        "Sorry, one more question",
    ]


async def test_off_a_backchannel_interrupts_as_before() -> None:
    stt, sink = FakeStt(["Tell me everything.", "Mm-hmm."]), FakeSink()
    tts = FakeTts(ms_per_char=20)
    llm = FakeLlm([REPLY, "Yes?"])
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=tts, sink=sink), config()) as conv:
        speak(conv)
        await until(lambda: len(sink.handles) == 2)
        sink.advance(sink.handles[0].duration_ms / 2)
        speak(conv, speech_ms=400, pause_ms=400)
        await until(lambda: len(conv.transcript) >= 3)
    assert conv.transcript[1].interrupted
    assert conv.transcript[2].content == "Mm-hmm."
