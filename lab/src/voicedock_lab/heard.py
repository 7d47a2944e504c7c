"""What a lab party heard, read from its recording: where the sound is and the holes in it.

The lab's parties record what reaches them (``record_session``, mono 16-bit WAV). For audio
we sent as one continuous sound (a tone), ``listen`` finds the first and last loud instant and
every silent hole in between, in windows of ``window_ms``: a hole is a run of quiet windows
between two loud ones. A 440 Hz tone at a tenth of full scale is loud in every 5 ms window
(two periods) and a hole of one window is already audible as a click, so holes are reported
from one window up.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class Heard:
    rate: int
    onset_s: float | None  # first loud window, from the start of the recording
    end_s: float | None  # end of the last loud window
    loud_s: float  # loud windows in total
    holes_ms: list[float] = field(default_factory=list)  # silent runs inside the sound
    holes_at_s: list[float] = field(default_factory=list)  # where each starts, after onset

    @property
    def span_s(self) -> float:
        """From the first to the end of the last loud window (holes included)."""
        return 0.0 if self.onset_s is None or self.end_s is None else self.end_s - self.onset_s


def read_recording(path: Path) -> tuple[NDArray[np.int16], int]:
    """Mono 16-bit samples and their rate."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise ValueError(f"{path.name}: not mono 16-bit")
        pcm = wav.readframes(wav.getnframes())
        return np.frombuffer(pcm, dtype="<i2"), wav.getframerate()


def listen(
    samples: NDArray[np.int16], rate: int, *, window_ms: int = 5, threshold: float = 1000.0
) -> Heard:
    """Loud (RMS above ``threshold``) windows of ``window_ms`` and the holes between them."""
    size = rate * window_ms // 1000
    count = len(samples) // size
    if count == 0:
        return Heard(rate, None, None, 0.0)
    windows = samples[: count * size].astype(np.float64).reshape(count, size)
    loud = np.sqrt(np.mean(windows**2, axis=1)) > threshold
    where = np.flatnonzero(loud)
    if len(where) == 0:
        return Heard(rate, None, None, 0.0)
    first, last = int(where[0]), int(where[-1])
    holes: list[float] = []
    at: list[float] = []
    step = window_ms / 1000
    run = 0
    for index, is_loud in enumerate(loud[first : last + 1]):
        if is_loud:
            if run:
                holes.append(run * window_ms)
                at.append((index - run) * step)
            run = 0
        else:
            run += 1
    return Heard(rate, first * step, (last + 1) * step, len(where) * step, holes, at)
