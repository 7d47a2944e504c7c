"""Silero VAD, the operator's alternative to webrtcvad: speech is speech, silence and noise
are not, at the telephone's 8 kHz and at 16 kHz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voicedock.calls.live.config import conversation_config, with_vad_settings
from voicedock.config import ConfigError, VadSettings, load_settings
from voicedock.domain.assistant_config import AssistantConfig
from voicedock.pipeline.audio import float_to_pcm16
from voicedock.pipeline.hearing import silero_vad
from voicedock.pipeline.hearing.listener import Listener
from voicedock.pipeline.hearing.vad import VadConfig, VoiceActivityDetector

from .synth import espeak, silence

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(not silero_vad.available(), reason="faster-whisper is not installed"),
]

SENTENCE = "Hello, I would like to book an appointment for Tuesday morning, please."


def speech(rate: int) -> bytes:
    pcm = espeak(SENTENCE, rate)
    if pcm is None:
        pytest.skip("espeak-ng is not installed")
    return pcm


def street(ms: int, rate: int = 8000, level: float = 0.1) -> bytes:
    """Pink noise at a level well above the energy floor."""
    rng = np.random.default_rng(5)
    n = rate * ms // 1000
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    signal = np.fft.irfft(spectrum, n)
    return float_to_pcm16(level * signal / np.std(signal))


def decide(config: VadConfig, pcm: bytes) -> list[bool]:
    return VoiceActivityDetector(config).process(pcm)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_speech_is_speech_silence_and_noise_are_not(rate: int) -> None:
    config = VadConfig(sample_rate=rate, engine="silero")
    said = decide(config, speech(rate))
    assert sum(said) >= 0.6 * len(said)  # espeak-ng's pauses between words included
    assert not any(decide(config, silence(1000, rate)))
    noisy = decide(config, street(3000, rate))
    assert sum(noisy) <= 0.05 * len(noisy)


def test_it_hears_speech_in_noise_webrtcvad_calls_all_speech() -> None:
    noise = np.frombuffer(street(6000, level=0.03), dtype="<i2").astype(np.int32)
    talk = np.frombuffer(speech(8000), dtype="<i2").astype(np.int32)
    mixed = noise.copy()
    mixed[8000 : 8000 + len(talk)] += talk
    pcm = np.clip(mixed, -32768, 32767).astype("<i2").tobytes()
    silero = decide(VadConfig(engine="silero"), pcm)
    webrtc = decide(VadConfig(engine="webrtc"), pcm)
    noise_only = slice(0, 40)  # the first 800 ms: noise alone
    assert sum(silero[noise_only]) <= 2
    assert sum(webrtc[noise_only]) > sum(silero[noise_only])
    assert sum(silero[60:120]) >= 30  # the sentence is heard


def test_the_state_follows_the_stream_and_reset_forgets_it() -> None:
    vad = silero_vad.SileroVad(8000)
    pcm = speech(8000)
    for i in range(0, 320 * 40, 320):
        vad.is_speech(pcm[i : i + 320])
    assert vad.probability > 0.5
    vad.reset()
    assert vad.probability == 0.0
    assert not vad.is_speech(bytes(320))


def test_the_settings_choose_it_for_every_call_at_the_call_rate() -> None:
    environ = {"VOICEDOCK_SPEECH__VAD__ENGINE": "silero"}
    settings = load_settings(None, environ=environ).speech.vad
    base = with_vad_settings(None, settings)
    assert base.vad == VadConfig(engine="silero", threshold=0.5)
    wide = conversation_config(AssistantConfig(), 16000, base=base)
    assert wide.vad == VadConfig(sample_rate=16000, engine="silero")
    listener = Listener(16000, vad=wide.vad)
    assert listener.vad.config.engine == "silero"
    other = conversation_config(AssistantConfig(), 48000, base=base)
    assert other.vad is not None
    assert other.vad.engine == "webrtc"
    assert conversation_config(AssistantConfig(), 8000).vad is None  # webrtcvad, as before


@pytest.mark.parametrize(
    ("toml", "key"),
    [("engine = 'rnnoise'\n", "speech.vad.engine"), ("silero_threshold = 1.5\n", "speech.vad")],
)
def test_a_bad_value_stops_start_up(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[speech.vad]\n" + toml)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(path, environ={})


def test_bad_configurations_are_refused() -> None:
    with pytest.raises(ValueError, match="engine"):
        VadConfig(engine="rnnoise")
    with pytest.raises(ValueError, match="silero"):
        VadConfig(sample_rate=48000, engine="silero")
    with pytest.raises(ValueError, match="threshold"):
        VadConfig(engine="silero", threshold=0.0)
    assert VadSettings().engine == "webrtc"  # the default stays the cheaper detector
