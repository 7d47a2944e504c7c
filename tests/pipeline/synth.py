"""Synthetic test audio: a voiced, speech-like signal, faint noise and silence (int16 PCM)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np

from voicedock.pipeline.audio import float_to_pcm16


def voiced(ms: int, rate: int = 8000, level: float = 0.3) -> bytes:
    """A glottal-pulse-like sawtooth around 120 Hz with syllable-rate amplitude modulation."""
    t = np.arange(rate * ms // 1000) / rate
    f0 = 120 + 20 * np.sin(2 * np.pi * 3 * t)
    phase = np.cumsum(2 * np.pi * f0 / rate)
    saw = ((phase / (2 * np.pi)) % 1.0) * 2 - 1
    return float_to_pcm16(level * saw * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)))


def silence(ms: int, rate: int = 8000) -> bytes:
    return b"\x00\x00" * (rate * ms // 1000)


def noise(ms: int, rate: int = 8000, level: float = 0.002, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return float_to_pcm16(rng.normal(0.0, level, rate * ms // 1000))


def frames(pcm: bytes, rate: int = 8000, frame_ms: int = 20) -> list[bytes]:
    size = rate * frame_ms // 1000 * 2
    return [pcm[i : i + size] for i in range(0, len(pcm) - size + 1, size)]


def espeak(text: str, rate: int = 8000, voice: str = "en-us") -> bytes | None:
    """Real synthesized speech from espeak-ng (22.05 kHz WAV) resampled to `rate`, if installed."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    from voicedock.pipeline.providers.espeak_tts import parse_wav

    wav = subprocess.run([exe, "--stdout", "-v", voice, text], capture_output=True, check=True)
    pcm, source_rate = parse_wav(wav.stdout)
    from voicedock.pipeline.audio import resample_pcm16

    return resample_pcm16(pcm, source_rate, rate)
