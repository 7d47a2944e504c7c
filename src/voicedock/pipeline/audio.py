"""Pure PCM helpers: conversions, resampling of int16 PCM, levels.

Resampling is done once per synthesized utterance (never per 20 ms frame) with the media
layer's one resampler (``media.codecs.resample_signal``: a windowed-sinc filter whose cut-off
follows the lower of the two rates, so 22.05 kHz speech folded down to the 8 kHz telephone
band does not alias).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from voicedock.media.codecs import resample_signal

FloatArray = npt.NDArray[np.float32]


def pcm16_to_float(pcm: bytes) -> FloatArray:
    """Little-endian int16 PCM → float32 in [-1, 1)."""
    samples = np.frombuffer(pcm, dtype="<i2")
    return (samples.astype(np.float32) / 32768.0).astype(np.float32)


def float_to_pcm16(samples: npt.NDArray[np.floating]) -> bytes:
    """float in [-1, 1] → little-endian int16 PCM, clipped."""
    scaled = np.clip(np.asarray(samples, dtype=np.float64) * 32767.0, -32768, 32767)
    return np.rint(scaled).astype("<i2").tobytes()


def resample_pcm16(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample int16 mono PCM; identity when the rates match."""
    if from_rate == to_rate:
        return pcm
    return float_to_pcm16(resample_signal(pcm16_to_float(pcm), from_rate, to_rate))


def rms_dbfs(pcm: bytes) -> float:
    """Signal level of int16 PCM in dBFS (-inf for digital silence). Runs on every caller
    frame (the VAD's level floor): one dot product, no temporaries but the float copy."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if samples.size == 0:
        return float("-inf")
    power = float(samples @ samples) / samples.size
    if power <= 0.0:
        return float("-inf")
    return 10.0 * math.log10(power / (32768.0 * 32768.0))
