from __future__ import annotations

import pytest

from voicedock.pipeline.frames import UserSpeechStarted, UserSpeechStopped
from voicedock.pipeline.hearing.endpointing import Endpointer, EndpointingConfig
from voicedock.pipeline.hearing.vad import VadConfig, VoiceActivityDetector

from .synth import espeak, frames, noise, silence, voiced

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("frame_ms", [10, 20, 30])
def test_voiced_signal_is_speech_silence_is_not(rate: int, frame_ms: int) -> None:
    vad = VoiceActivityDetector(VadConfig(sample_rate=rate, frame_ms=frame_ms))
    speech = vad.process(voiced(600, rate))
    quiet = vad.process(silence(600, rate))
    assert sum(speech) >= 0.9 * len(speech)
    assert not any(quiet)


def test_faint_noise_is_gated_by_energy_floor() -> None:
    vad = VoiceActivityDetector(VadConfig(aggressiveness=0, min_level_dbfs=-45.0))
    assert not any(vad.process(noise(1000, level=0.002)))


def test_reslices_odd_chunk_sizes() -> None:
    vad = VoiceActivityDetector(VadConfig(sample_rate=8000, frame_ms=20))
    pcm = voiced(200)
    decisions = vad.process(pcm[:100]) + vad.process(pcm[100:1000]) + vad.process(pcm[1000:])
    assert len(decisions) == 10


def test_rejects_wrong_frame_size_and_bad_config() -> None:
    vad = VoiceActivityDetector()
    with pytest.raises(ValueError, match="320 bytes"):
        vad.is_speech(b"\x00" * 10)
    with pytest.raises(ValueError, match="sample_rate"):
        VadConfig(sample_rate=22050)
    with pytest.raises(ValueError, match="aggressiveness"):
        VadConfig(aggressiveness=5)


def _turns(pcm: bytes) -> list[object]:
    vad = VoiceActivityDetector(VadConfig(aggressiveness=2))
    ep = Endpointer(EndpointingConfig(end_silence_ms=500))
    events: list[object] = []
    for frame in frames(pcm):
        for speech in vad.process(frame):
            events.extend(ep.process(speech))
    return events


def test_vad_plus_endpointer_on_synthetic_turns() -> None:
    pcm = silence(300) + voiced(800) + silence(800) + voiced(600) + silence(800)
    kinds = [type(e) for e in _turns(pcm)]
    assert kinds == [UserSpeechStarted, UserSpeechStopped] * 2


def test_vad_plus_endpointer_on_recorded_speech() -> None:
    spoken = espeak("Hello, I would like to move my appointment to Thursday.")
    if spoken is None:
        pytest.skip("espeak-ng not installed")
    events = _turns(silence(500) + spoken + silence(1000))
    starts = [e for e in events if isinstance(e, UserSpeechStarted)]
    stops = [e for e in events if isinstance(e, UserSpeechStopped)]
    assert len(starts) == len(stops) >= 1
    duration_ms = len(spoken) // 16
    assert stops[-1].ended_at_ms - starts[0].at_ms >= 0.7 * duration_ms
