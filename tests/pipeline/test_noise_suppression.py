"""Noise suppression of the caller's audio (RNNoise): noise is taken out, speech is kept, each
chunk comes back as long as it went in, at the telephone's 8 kHz and at 16 kHz; the node's
setting and the assistant's choose it for a call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voicedock.calls.live.config import conversation_config
from voicedock.config import ConfigError, load_settings
from voicedock.domain.assistant_config import AssistantConfig
from voicedock.pipeline.audio import float_to_pcm16
from voicedock.pipeline.hearing.noise import NoiseSuppressor

from .synth import espeak

pytestmark = pytest.mark.unit

SENTENCE = "Hello, I would like to book an appointment for Tuesday morning, please."
RATES = (8000, 16000)


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def street(n: int, level: float, seed: int = 5) -> np.ndarray:
    """Pink noise of standard deviation ``level`` (of full scale)."""
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    signal = np.fft.irfft(spectrum, n)
    return level * signal / np.std(signal)


def denoised(pcm: bytes, rate: int, frame_ms: int = 20) -> bytes:
    suppressor = NoiseSuppressor(rate)
    size = rate * frame_ms // 1000 * 2
    chunks = [pcm[i : i + size] for i in range(0, len(pcm), size)]
    out = [suppressor.process(chunk) for chunk in chunks]
    assert [len(o) for o in out] == [len(c) for c in chunks]  # each chunk as long as it was
    return b"".join(out)


@pytest.mark.parametrize("rate", RATES)
def test_noise_alone_is_taken_out(rate: int) -> None:
    noisy = float_to_pcm16(street(rate * 2, 0.05))
    quiet = samples(denoised(noisy, rate))
    # After the first half second (the network's state settling), 20 dB quieter at least.
    half = rate // 2
    assert np.std(quiet[half:]) < np.std(samples(noisy)[half:]) / 10


@pytest.mark.parametrize("rate", RATES)
def test_speech_in_noise_is_kept_and_cleaner(rate: int) -> None:
    spoken = espeak(SENTENCE, rate)
    if spoken is None:
        pytest.skip("espeak-ng is not installed")
    clean = np.concatenate((np.zeros(rate), samples(spoken)))  # 1 s of noise before the words
    noise = street(len(clean), 1.0)
    noise *= np.std(samples(spoken)) / np.std(noise) / 10 ** (5 / 20)  # 5 dB SNR
    noisy = np.clip(np.rint(clean + noise), -32768, 32767).astype("<i2")
    out = samples(denoised(noisy.tobytes(), rate))
    # The speech comes out about 33 ms later: the lag, to the sample, that matches it best.
    end = len(clean) - rate // 20
    lag = max(
        range(rate // 50, rate // 20),
        key=lambda at: float(np.dot(out[rate + at : end + at], clean[rate:end])),
    )
    assert 0.025 < lag / rate < 0.045
    speech, later = slice(rate, end), slice(rate + lag, end + lag)
    # The words keep most of their energy (within 3 dB) ...
    assert np.std(out[later]) > np.std(clean[speech]) / np.sqrt(2)
    # ... and the output is closer to the clean words than the noisy input was.
    kept = np.corrcoef(out[later], clean[speech])[0, 1]
    before = np.corrcoef(noisy[speech].astype(np.float64), clean[speech])[0, 1]
    assert kept > before + 0.03, (kept, before)
    # The noise before the words is mostly gone.
    assert np.std(out[rate // 2 : rate]) < np.std(noise[rate // 2 : rate]) / 10


@pytest.mark.parametrize("frame_ms", [10, 20, 30])
def test_any_chunk_size_comes_back_at_its_size(frame_ms: int) -> None:
    pcm = float_to_pcm16(street(8000, 0.05))
    assert len(denoised(pcm, 8000, frame_ms)) == len(pcm)
    suppressor = NoiseSuppressor(8000)
    assert [len(suppressor.process(bytes(n))) for n in (2, 158, 0, 322)] == [2, 158, 0, 322]


def test_the_node_default_and_the_assistant_choose_it(tmp_path: Path) -> None:
    from voicedock.calls.runner import _dialogue_defaults

    path = tmp_path / "c.toml"
    path.write_text("[speech.noise_suppression]\nenabled = true\n")
    on = _dialogue_defaults(load_settings(path, environ={}))
    off = _dialogue_defaults(load_settings(None, environ={}))
    assert (on.noise_suppression, off.noise_suppression) == (True, False)  # off by default
    assert conversation_config(AssistantConfig(), 8000, base=on).noise_suppression
    refused = AssistantConfig(noise_suppression=False)
    assert not conversation_config(refused, 8000, base=on).noise_suppression
    asked = AssistantConfig(noise_suppression=True)
    assert conversation_config(asked, 8000, base=off).noise_suppression


def test_a_bad_value_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[speech.noise_suppression]\nenabled = 2\n")
    with pytest.raises(ConfigError, match=r"speech\.noise_suppression"):
        load_settings(path, environ={})
