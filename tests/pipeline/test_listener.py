from __future__ import annotations

import pytest

from voicedock.pipeline.frames import Interruption, UserSpeechStarted
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.hearing.listener import Listener, UserUtterance
from voicedock.pipeline.hearing.vad import VadConfig

from .synth import frames, silence, voiced

pytestmark = pytest.mark.unit

EP = EndpointingConfig(end_silence_ms=400, silence_timeout_ms=None, max_duration_ms=None)


def feed(listener: Listener, pcm: bytes, audible: bool = False) -> list[object]:
    out: list[object] = []
    for frame in frames(pcm):
        out.extend(listener.process(frame, audible))
    return out


def test_utterance_has_pre_roll_and_trimmed_tail() -> None:
    listener = Listener(8000, endpointing=EP, pre_roll_ms=200)
    events = feed(listener, silence(1000) + voiced(600) + silence(600))
    assert isinstance(events[0], UserSpeechStarted)
    (utterance,) = [e for e in events if isinstance(e, UserUtterance)]
    ms = len(utterance.pcm) / 16
    # 600 ms speech + up to 200 ms pre-roll + 150 ms kept tail; the rest of the silence cut
    assert 700 <= ms <= 1000
    assert utterance.pcm.endswith(b"\x00\x00" * 100)


def test_an_utterance_says_how_long_before_its_decision_its_audio_started() -> None:
    listener = Listener(8000, endpointing=EP, pre_roll_ms=200)
    events = feed(listener, silence(1000) + voiced(600) + silence(600))
    events += feed(listener, silence(2000) + voiced(400) + silence(600))
    first, second = [e for e in events if isinstance(e, UserUtterance)]
    for utterance in (first, second):
        # Its audio starts with its pre-roll (at most 200 ms before its speech); the frame
        # that ended it came at its decision.
        speech_to_decision = utterance.stopped.decided_at_ms - utterance.stopped.started_at_ms
        assert speech_to_decision <= utterance.started_before_ms <= speech_to_decision + 220


def test_blip_is_dropped_and_next_turn_is_clean() -> None:
    listener = Listener(8000, endpointing=EP, pre_roll_ms=0)
    assert feed(listener, voiced(40) + silence(500)) == []
    events = feed(listener, voiced(400) + silence(500))
    (utterance,) = [e for e in events if isinstance(e, UserUtterance)]
    assert len(utterance.pcm) / 16 <= 400 + 150 + 40


def test_barge_in_while_audible() -> None:
    listener = Listener(8000, endpointing=EP)
    events = feed(listener, voiced(400), audible=True)
    assert [type(e) for e in events] == [UserSpeechStarted, Interruption]


def test_rate_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="sample rate"):
        Listener(8000, vad=VadConfig(sample_rate=16000))
