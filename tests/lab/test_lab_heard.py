"""``voicedock_lab.heard``: the sound and the holes in a party's recording."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from voicedock_lab.heard import listen, read_recording

pytestmark = pytest.mark.unit

RATE = 8000


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2")


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), dtype="<i2")


def test_holes_inside_the_sound_are_found_where_they_are() -> None:
    samples = np.concatenate(
        [silence(0.5), tone(0.4), silence(0.1), tone(0.4), silence(0.02), tone(0.2), silence(1)]
    )
    heard = listen(samples, RATE)
    assert heard.onset_s == pytest.approx(0.5)
    assert heard.end_s == pytest.approx(1.62, abs=0.005)
    assert heard.holes_ms == [100, 20]
    assert heard.holes_at_s == [pytest.approx(0.4), pytest.approx(0.9)]
    assert heard.loud_s == pytest.approx(1.0, abs=0.005)
    assert heard.span_s == pytest.approx(1.12, abs=0.005)


def test_silence_and_a_continuous_tone() -> None:
    assert listen(silence(1), RATE).onset_s is None
    heard = listen(np.concatenate([silence(0.2), tone(1.0)]), RATE)
    assert heard.holes_ms == []
    assert heard.loud_s == pytest.approx(1.0)


def test_a_recording_is_read_as_mono_16_bit(tmp_path: Path) -> None:
    path = tmp_path / "party.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(tone(0.1).tobytes())
    samples, rate = read_recording(path)
    assert rate == RATE
    assert np.array_equal(samples, tone(0.1))
