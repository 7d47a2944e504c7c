"""Pure PCM helpers: conversions, resampling of int16 PCM, streams cut anywhere, levels.

Resampling is done once per synthesized utterance (never per 20 ms frame) with the media
layer's one resampler (``media.codecs.resample_signal``: a windowed-sinc filter whose cut-off
follows the lower of the two rates, so 22.05 kHz speech folded down to the 8 kHz telephone
band does not alias). A stream of PCM cut anywhere (an HTTP body's chunks, a speech-to-speech
provider's audio deltas) is re-cut into whole samples (``Pcm16Aligner``) and, between two
rates, resampled as it flows with the media layer's streaming ``Resampler`` (``PcmStream``).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from voicedock.media.codecs import Resampler, resample_signal

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


class Pcm16Aligner:
    """Re-cut a byte stream so every chunk holds whole 16-bit samples (an odd byte waits for
    the next chunk)."""

    def __init__(self) -> None:
        self._carry = b""

    def push(self, chunk: bytes) -> bytes:
        data = self._carry + chunk
        cut = len(data) - len(data) % 2
        self._carry = data[cut:]
        return data[:cut]


class PcmStream:
    """16-bit PCM chunks of any byte length at one rate → whole samples at another.

    Provider audio is cut anywhere (base64 deltas, a synthesis answer's network reads, odd byte
    counts); the odd byte and the resampler's filter history carry over, so the chunks join
    without clicks, and the output is placed on the input's clock (the filter's delay taken
    out). ``end`` gives the last samples the filter held back: the chunks of a whole signal then
    resample to what ``resample_pcm16`` makes of it at once.
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self._aligner = Pcm16Aligner()
        self._resampler = (
            Resampler(from_rate, to_rate, aligned=True) if from_rate != to_rate else None
        )

    def convert(self, chunk: bytes) -> bytes:
        pcm = self._aligner.push(chunk)
        if self._resampler is None:
            return pcm
        return _pcm16(self._resampler.process(np.frombuffer(pcm, dtype="<i2")))

    def end(self) -> bytes:
        """The signal ended: the samples still held back (an odd byte left is dropped); the
        stream starts again from silence after it."""
        self._aligner = Pcm16Aligner()
        if self._resampler is None:
            return b""
        return _pcm16(self._resampler.flush())


def _pcm16(samples: npt.NDArray[np.int16]) -> bytes:
    return samples.astype("<i2", copy=False).tobytes()


FULL_SCALE = 32768.0  # of int16 PCM, for levels in dBFS


def energy(pcm: bytes) -> float:
    """The sum of the squared samples of int16 PCM. Runs on every caller frame (the VAD's
    level floor): one dot product, no temporaries but the float copy."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(samples @ samples)


def rms_dbfs(pcm: bytes) -> float:
    """Signal level of int16 PCM in dBFS (-inf for digital silence)."""
    count = len(pcm) // 2
    power = energy(pcm) / count if count else 0.0
    if power <= 0.0:
        return float("-inf")
    return 10.0 * math.log10(power / (FULL_SCALE * FULL_SCALE))
