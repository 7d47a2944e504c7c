"""Pure PCM helpers: conversions and a band-limited resampler.

Resampling is done once per synthesized utterance (never per 20 ms frame), with a
windowed-sinc interpolator whose cut-off follows the lower of the two rates, so 22.05 kHz
speech folded down to the 8 kHz telephone band does not alias.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

_HALF_TAPS = 16  # taps on each side of the interpolation point


def pcm16_to_float(pcm: bytes) -> FloatArray:
    """Little-endian int16 PCM → float32 in [-1, 1)."""
    samples = np.frombuffer(pcm, dtype="<i2")
    return (samples.astype(np.float32) / 32768.0).astype(np.float32)


def float_to_pcm16(samples: npt.NDArray[np.floating]) -> bytes:
    """float in [-1, 1] → little-endian int16 PCM, clipped."""
    scaled = np.clip(np.asarray(samples, dtype=np.float64) * 32767.0, -32768, 32767)
    return np.rint(scaled).astype("<i2").tobytes()


def resample_float(samples: FloatArray, from_rate: int, to_rate: int) -> FloatArray:
    """Resample mono float audio with a Hann-windowed sinc (band-limited to the lower rate)."""
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError("sample rates must be positive")
    if from_rate == to_rate or samples.size == 0:
        return samples.astype(np.float32, copy=True)
    n_out = int(samples.size * to_rate // from_rate)
    step = from_rate / to_rate
    cutoff = min(1.0, to_rate / from_rate)  # relative to the input Nyquist
    positions = np.arange(n_out, dtype=np.float64) * step
    base = np.floor(positions).astype(np.int64)
    offsets = np.arange(-_HALF_TAPS + 1, _HALF_TAPS + 1, dtype=np.int64)
    idx = base[:, None] + offsets[None, :]
    distance = positions[:, None] - idx
    window = 0.5 + 0.5 * np.cos(np.pi * distance / _HALF_TAPS)
    kernel = cutoff * np.sinc(cutoff * distance) * window
    padded = np.concatenate(
        [
            np.zeros(_HALF_TAPS, np.float32),
            samples.astype(np.float32),
            np.zeros(_HALF_TAPS + 1, np.float32),
        ]
    )
    values = padded[idx + _HALF_TAPS]
    result: FloatArray = (values * kernel).sum(axis=1).astype(np.float32)
    return result


def resample_pcm16(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample int16 mono PCM; identity when the rates match."""
    if from_rate == to_rate:
        return pcm
    return float_to_pcm16(resample_float(pcm16_to_float(pcm), from_rate, to_rate))


def rms_dbfs(pcm: bytes) -> float:
    """Signal level of int16 PCM in dBFS (-inf for digital silence)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    if samples.size == 0:
        return float("-inf")
    power = float(np.mean(samples * samples))
    if power <= 0.0:
        return float("-inf")
    return 10.0 * float(np.log10(power / (32768.0 * 32768.0)))
