"""DTMF tones in audio, found by a Goertzel detector: what a recording's keypad tones were.

    detect_dtmf(samples, 8000)  -> [DetectedKey("9", at_s=1.02), ...]

Each 20 ms block is measured at the eight DTMF frequencies; a block holds a key when its
strongest row and column tones stand well above the other tones of their group and together
carry most of the block's energy, and a key counts once it lasts 40 ms (two blocks). A run of
one key is reported once, at its start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

ROWS = (697.0, 770.0, 852.0, 941.0)
COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")
BLOCK_S = 0.020
MIN_BLOCKS = 2
MIN_LEVEL = 300.0  # the RMS a tone must have (16-bit samples): silence and hiss are no key


@dataclass(frozen=True, slots=True)
class DetectedKey:
    key: str
    at_s: float


def goertzel_power(block: NDArray[np.float64], frequency: float, rate: int) -> float:
    """The power of ``frequency`` in ``block`` (the Goertzel algorithm)."""
    coefficient = 2.0 * np.cos(2.0 * np.pi * frequency / rate)
    previous = before = 0.0
    for sample in block:
        previous, before = sample + coefficient * previous - before, previous
    return float(previous * previous + before * before - coefficient * previous * before)


def block_key(block: NDArray[np.float64], rate: int) -> str | None:
    """The key whose two tones fill ``block``, if any."""
    if np.sqrt(np.mean(block * block)) < MIN_LEVEL:
        return None
    rows = [goertzel_power(block, f, rate) for f in ROWS]
    columns = [goertzel_power(block, f, rate) for f in COLUMNS]
    row, column = int(np.argmax(rows)), int(np.argmax(columns))
    if any(p * 8 > rows[row] for i, p in enumerate(rows) if i != row):
        return None
    if any(p * 8 > columns[column] for i, p in enumerate(columns) if i != column):
        return None
    # The two tones carry most of the block's energy (speech and noise spread theirs).
    total = float(np.sum(block * block)) * len(block) / 2
    if rows[row] + columns[column] < 0.5 * total:
        return None
    return KEYS[row][column]


def detect_dtmf(samples: NDArray[np.int16], rate: int) -> list[DetectedKey]:
    """The keys whose tones ``samples`` (mono) hold, in order."""
    size = int(BLOCK_S * rate)
    audio = samples.astype(np.float64)
    found: list[DetectedKey] = []
    run_key: str | None = None
    run = 0
    for index in range(len(audio) // size):
        key = block_key(audio[index * size : (index + 1) * size], rate)
        if key is not None and key == run_key:
            run += 1
        else:
            run_key, run = key, 1 if key is not None else 0
        if key is not None and run == MIN_BLOCKS:
            found.append(DetectedKey(key, (index - MIN_BLOCKS + 1) * BLOCK_S))
    return found


def dtmf_tone(key: str, rate: int, seconds: float, level: float = 6000.0) -> NDArray[np.int16]:
    """The tone of ``key`` (for tests of the detector)."""
    row = next(i for i, keys in enumerate(KEYS) if key in keys)
    column = KEYS[row].index(key)
    t = np.arange(int(seconds * rate)) / rate
    tone = np.sin(2 * np.pi * ROWS[row] * t) + np.sin(2 * np.pi * COLUMNS[column] * t)
    return (tone * level / 2).astype(np.int16)
