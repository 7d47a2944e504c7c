"""The turn model (Smart Turn v3.2) on telephone audio made with Piper: a finished sentence
reads as complete, one left hanging on a filler or a conjunction as incomplete; the call
audio is resampled as the model needs, the last 8 s count, the weights come from the
installed package."""

from __future__ import annotations

import numpy as np
import pytest

from voicedock.domain.audio import ULAW
from voicedock.media.codecs import decode, encode
from voicedock.pipeline.hearing import turn_model
from voicedock.pipeline.hearing.turn_model import (
    COMPLETE_THRESHOLD,
    TurnPrediction,
    load_turn_model,
)
from voicedock_lab.utterances import SOUND_RATE, synthesize_pcm

from .engines import needs_offline_engines

pytestmark = [
    pytest.mark.unit,
    needs_offline_engines,
    pytest.mark.skipif(not turn_model.installed(), reason="the turn model is not installed"),
]

FINISHED = ("I would like to book an appointment on Monday.", "Can you tell me when you open?")
HANGING = ("I would like to book an appointment and", "My name is John and um")


def telephone(text: str) -> bytes:
    """``text`` said by Piper, through µ-law at 8 kHz as on the phone, then 200 ms of the
    pause the model is asked in."""
    from voicedock.pipeline.providers.piper_tts import packaged_voice

    pcm = np.frombuffer(synthesize_pcm(text, str(packaged_voice())), dtype="<i2")
    heard = decode(ULAW, encode(ULAW, pcm)).astype("<i2").tobytes()
    return heard + bytes(2 * SOUND_RATE // 5)


@pytest.mark.parametrize("text", FINISHED)
def test_a_finished_sentence_is_complete(text: str) -> None:
    heard = load_turn_model().predict(telephone(text), SOUND_RATE)
    assert heard.complete, heard


@pytest.mark.parametrize("text", HANGING)
def test_a_sentence_left_hanging_is_incomplete(text: str) -> None:
    heard = load_turn_model().predict(telephone(text), SOUND_RATE)
    assert not heard.complete, heard


def test_only_the_last_eight_seconds_count_and_the_rate_is_the_models() -> None:
    model = load_turn_model()
    finished = telephone(FINISHED[0])
    alone = model.predict(finished, SOUND_RATE).probability
    # What was said more than 8 s before the pause is out of the window: the same verdict
    # after an unfinished turn as after silence.
    pause = bytes(2 * SOUND_RATE * 8)
    hanging = telephone(HANGING[0]) * 4
    after_words = model.predict(hanging + pause + finished, SOUND_RATE).probability
    after_silence = model.predict(bytes(len(hanging)) + pause + finished, SOUND_RATE)
    assert abs(after_words - after_silence.probability) < 1e-4
    assert after_silence.complete
    # The same audio at 16 kHz reads the same.
    from voicedock.pipeline.audio import resample_pcm16

    wide = model.predict(resample_pcm16(finished, SOUND_RATE, 16000), 16000).probability
    assert abs(wide - alone) < 0.1
    features = model.features(np.zeros(16000, dtype=np.float32))
    assert features.shape == (80, 800)


def test_the_weights_come_from_the_installed_package() -> None:
    path = turn_model.weights_path()
    assert path is not None
    assert path.name == "smart-turn-v3.2-cpu.onnx"
    assert "pipecat" in path.parts
    assert load_turn_model() is load_turn_model()  # loaded once per process


def test_the_verdict_is_the_probability_over_the_threshold() -> None:
    assert TurnPrediction(COMPLETE_THRESHOLD + 0.01).complete
    assert not TurnPrediction(COMPLETE_THRESHOLD).complete
