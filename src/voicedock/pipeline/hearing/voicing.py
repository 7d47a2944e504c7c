"""How much of a sound is voiced: pitched, as a voice is (``pitched_ms``).

A cough, a door, a keyboard or a burst of line noise can sound like speech to the VAD, and a
recognizer asked about them may still write a word ("I"); none of them has a pitch. A frame is
pitched when its normalized autocorrelation peaks (``PITCHED``) at a lag of a voice's pitch
(60-400 Hz). Barge-in on words (``pipeline/dialogue/words_decide.py``) calls a sound with less
than ``min_voiced_ms`` of it a noise.
"""

from __future__ import annotations

from typing import Final

import numpy as np

PITCHED: Final = 0.6  # the autocorrelation peak from which a frame is pitched
_FRAME_MS, _HOP_MS = 40, 20
_QUIET_RMS = 300.0  # of 32767: quieter frames are not counted


def pitched_ms(pcm: bytes, sample_rate: int, *, enough_ms: int | None = None) -> int:
    """Milliseconds of ``pcm`` (16-bit mono) that are pitched, counted in 20 ms steps; with
    ``enough_ms`` the count stops once it is reached."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    size, hop = sample_rate * _FRAME_MS // 1000, sample_rate * _HOP_MS // 1000
    low, high = sample_rate // 400, sample_rate // 60
    counted = 0
    for start in range(0, len(x) - size - high, hop):
        window = x[start : start + size + high]
        window = window - window.mean()
        head = window[:size]
        energy = float(np.dot(head, head))
        if energy < size * _QUIET_RMS**2:
            continue
        dots = np.correlate(window[low : size + high], head, mode="valid")
        squares = np.concatenate(([0.0], np.cumsum(window * window)))
        lags = np.arange(low, low + len(dots))
        others = squares[lags + size] - squares[lags]
        peak = float(np.max(dots / np.sqrt(energy * others + 1e-9)))
        if peak >= PITCHED:
            counted += _HOP_MS
            if enough_ms is not None and counted >= enough_ms:
                break
    return counted
