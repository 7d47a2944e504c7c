"""The tests' DTMF detector (``media/dtmf_tones.py``) finds keys' tones, and nothing in
silence, a single tone, noise or speech-like audio."""

from __future__ import annotations

import numpy as np
import pytest

from media.dtmf_tones import detect_dtmf, dtmf_tone
from pipeline.synth import voiced

pytestmark = pytest.mark.unit

RATE = 8000


def test_each_key_of_a_sequence_is_found_once_in_order() -> None:
    gap = np.zeros(int(0.1 * RATE), dtype=np.int16)
    keys = "4929386172530418#*"
    audio = np.concatenate([part for key in keys for part in (dtmf_tone(key, RATE, 0.1), gap)])
    found = detect_dtmf(audio, RATE)
    assert "".join(k.key for k in found) == keys
    assert found[1].at_s == pytest.approx(0.2, abs=0.03)


def test_a_tone_at_16_khz_and_a_quiet_one_are_found() -> None:
    assert [k.key for k in detect_dtmf(dtmf_tone("5", 16000, 0.1), 16000)] == ["5"]
    assert [k.key for k in detect_dtmf(dtmf_tone("0", RATE, 0.1, level=1500), RATE)] == ["0"]


def test_silence_noise_a_single_tone_and_speech_hold_no_key() -> None:
    rng = np.random.default_rng(7)
    noise = (rng.standard_normal(RATE) * 3000).astype(np.int16)
    t = np.arange(RATE) / RATE
    single = (np.sin(2 * np.pi * 697 * t) * 6000).astype(np.int16)
    speech = np.frombuffer(voiced(1000), dtype="<i2")
    for audio in (np.zeros(RATE, dtype=np.int16), noise, single, speech):
        assert detect_dtmf(audio, RATE) == []


def test_a_tone_shorter_than_40_ms_is_no_key() -> None:
    assert detect_dtmf(dtmf_tone("1", RATE, 0.03), RATE) == []
