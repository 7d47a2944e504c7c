"""The pipeline resamples with the media layer's one resampler: its output is the one the
former pipeline interpolator (a Hann-windowed sinc, kept here as the reference) gave, to within
0.75 % of full scale on speech-band audio, once the at most half an input sample the new filter
leaves of its delay (``Resampler.signal_offset_seconds``) is accounted for."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from voicedock.media.codecs import Resampler
from voicedock.pipeline.audio import float_to_pcm16, pcm16_to_float, resample_pcm16

pytestmark = pytest.mark.unit

_HALF_TAPS = 16

# Every pair the product resamples a whole utterance between (Piper 22.05 kHz, providers'
# 16 and 24 kHz, the telephone's 8 and 16 kHz).
RATE_PAIRS = [
    (22050, 8000),
    (22050, 16000),
    (16000, 8000),
    (8000, 16000),
    (24000, 16000),
    (16000, 24000),
    (24000, 8000),
    (16000, 22050),
]


def former_resample(
    samples: npt.NDArray[np.float32], from_rate: int, to_rate: int, shift: float = 0.0
) -> npt.NDArray[np.float32]:
    """The pipeline's former resampler, read ``shift`` input samples earlier."""
    n_out = int(samples.size * to_rate // from_rate)
    cutoff = min(1.0, to_rate / from_rate)
    positions = np.arange(n_out, dtype=np.float64) * (from_rate / to_rate) - shift
    base = np.floor(positions).astype(np.int64)
    offsets = np.arange(-_HALF_TAPS + 1, _HALF_TAPS + 1, dtype=np.int64)
    idx = base[:, None] + offsets[None, :]
    distance = positions[:, None] - idx
    window = 0.5 + 0.5 * np.cos(np.pi * distance / _HALF_TAPS)
    kernel = cutoff * np.sinc(cutoff * distance) * window
    pad = _HALF_TAPS + 1
    padded = np.concatenate(
        [np.zeros(pad, np.float32), samples.astype(np.float32), np.zeros(pad + 1, np.float32)]
    )
    result: npt.NDArray[np.float32] = (padded[idx + pad] * kernel).sum(axis=1).astype(np.float32)
    return result


def speech_band(rate: int, top: float) -> npt.NDArray[np.float32]:
    """One second of three tones, the highest at ``top`` Hz, peaking near -2 dBFS."""
    t = np.arange(rate) / rate
    mix = (
        0.3 * np.sin(2 * np.pi * 300 * t)
        + 0.3 * np.sin(2 * np.pi * 1100 * t + 1.0)
        + 0.2 * np.sin(2 * np.pi * top * t + 2.0)
    )
    return mix.astype(np.float32)


@pytest.mark.parametrize(("src", "dst"), RATE_PAIRS)
def test_resampled_pcm_equals_the_former_interpolators_output(src: int, dst: int) -> None:
    # Up to 75 % of the lower Nyquist frequency: 3 kHz on the telephone band.
    pcm = float_to_pcm16(speech_band(src, 0.75 * min(src, dst) / 2))
    out = pcm16_to_float(resample_pcm16(pcm, src, dst))
    shift = Resampler(src, dst).signal_offset_seconds * src
    former = former_resample(pcm16_to_float(pcm), src, dst, shift)
    assert len(out) == len(former) == len(pcm) // 2 * dst // src
    settled = slice(_HALF_TAPS * 4, len(out) - _HALF_TAPS * 4)  # the edges of the signal differ
    assert np.max(np.abs(out[settled] - former[settled])) < 0.0075
