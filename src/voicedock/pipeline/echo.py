"""Echo gate: the assistant's own voice coming back on the line is not the caller.

On a line that returns what it hears (speakerphone, a hybrid echo, an echoing party) the
assistant's audio reaches the listener again, delayed (the echo path: up to a few hundred
ms) and attenuated. Left alone it would count as the caller talking over the assistant and
cut it within a barge-in window.

The gate knows what was sent: the conversation hands it every chunk of assistant audio as it
is queued (``play``), and the chunks are laid out on the listener's audio clock the way the
media pacer sends them: back to back, in real time, each starting no earlier than when it was
queued. For each inbound chunk the gate takes the last ``window_ms`` of caller audio and
looks for it in the audio sent ``-lead_ms`` … ``max_delay_ms`` earlier: the normalized
cross-correlation over that range of lags (one FFT per chunk). A strong match
(``>= correlation``) means the inbound audio is the echo of our own voice, however loud or
faint it came back. A caller speaking over the echo adds energy the sent audio does not
explain: the match drops below the threshold once their voice is about as loud as the echo,
and earlier through a single-tap echo canceller: matches clean enough to be echo alone teach
the gate the echo path's gain, and a window where the echo at that gain (at the best lag)
removes less than ``min_cancel_db`` of the inbound energy holds someone else's voice. Frames
decided as echo are not speech for the endpointer, so a barge-in still needs
``barge_in_speech_ms`` of speech that is *not* echo.

Pure and synchronous: no clock but the audio itself, so the same audio gives the same
decisions.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy import fft  # loaded with this module (numpy loads it on first use otherwise)

FloatArray = npt.NDArray[np.float64]

_MIN_LEVEL = 1e-4  # RMS (full scale 1.0) below which a window is silence: nothing to match
_PATH_CORRELATION = 0.95  # a match this clean is echo alone: its gain is the echo path's
_MATCH_RATE = 8000  # audio is matched at the telephone rate (16 kHz is averaged down)


@dataclass(slots=True, frozen=True)
class EchoGateConfig:
    enabled: bool = True
    max_delay_ms: int = 600  # longest echo path: sent → heard back
    lead_ms: int = 100  # echo heard up to this much *before* the clock places the sent audio
    window_ms: int = 60  # caller audio matched at once
    correlation: float = 0.85  # normalized cross-correlation from which inbound is our echo
    min_cancel_db: float = 8.0  # echo removed at the learned gain, below which someone talks

    def __post_init__(self) -> None:
        if not 0 < self.max_delay_ms <= 2000:
            raise ValueError("echo.max_delay_ms must be between 1 and 2000")
        if not 0 <= self.lead_ms <= 500:
            raise ValueError("echo.lead_ms must be between 0 and 500")
        if not 20 <= self.window_ms <= 200:
            raise ValueError("echo.window_ms must be between 20 and 200")
        if not 0.0 < self.correlation < 1.0:
            raise ValueError("echo.correlation must be between 0 and 1 (exclusive)")
        if not 0.0 <= self.min_cancel_db <= 40.0:
            raise ValueError("echo.min_cancel_db must be between 0 and 40")


class EchoGate:
    """Feed the sent audio (``play``) and every inbound chunk (``hear``), both int16 PCM at
    ``sample_rate``; ``hear`` advances the audio clock by the chunk's length, ``is_echo``
    judges the latest inbound audio."""

    def __init__(self, sample_rate: int, config: EchoGateConfig | None = None) -> None:
        self.config = cfg = config or EchoGateConfig()
        self.sample_rate = sample_rate
        self._step = max(1, sample_rate // _MATCH_RATE)  # input samples per matched sample
        rate = sample_rate // self._step
        self._now = 0  # samples of inbound audio seen
        self._queued_end = 0  # where the audio queued so far ends, in samples
        self._sent: deque[tuple[int, FloatArray]] = deque()  # (start sample, audio)
        self._window = max(1, rate * cfg.window_ms // 1000)
        self._max_delay = rate * cfg.max_delay_ms // 1000
        self._lead = rate * cfg.lead_ms // 1000
        # The latest inbound chunks, as received, covering the window: decoded only when a
        # match is asked for (``hear`` runs on every caller frame; ``is_echo`` rarely).
        self._recent: deque[bytes] = deque()
        self._recent_samples = 0  # matched samples in _recent
        self._gain: float | None = None  # echo path gain, learned from clean echo
        self.last_correlation = 0.0  # the best match of the last chunk (0: nothing sent)
        self.last_cancel_db = 0.0

    def play(self, pcm: bytes) -> None:
        """Assistant audio queued now, behind what is queued already."""
        if not self.config.enabled or not pcm:
            return
        audio = self._samples(pcm)
        start = max(self._now, self._queued_end)
        self._sent.append((start, audio))
        self._queued_end = start + len(audio)

    def cut(self) -> None:
        """What is queued and not sent yet never will be (barge-in flush)."""
        if self._queued_end <= self._now:
            return
        self._queued_end = self._now
        kept: deque[tuple[int, FloatArray]] = deque()
        for start, audio in self._sent:
            if start < self._now:
                kept.append((start, audio[: self._now - start]))
        self._sent = kept

    @property
    def active(self) -> bool:
        """Sent audio may still be coming back: ``is_echo`` can say yes."""
        return bool(self._sent)

    def hear(self, pcm: bytes) -> None:
        """Inbound audio: advance the clock by its length."""
        n = len(pcm) // 2 // self._step  # what _samples(pcm) gives
        self._now += n
        recent = self._recent
        recent.append(pcm)
        self._recent_samples += n
        while self._recent_samples - len(recent[0]) // 2 // self._step >= self._window:
            self._recent_samples -= len(recent.popleft()) // 2 // self._step
        self._forget()

    def is_echo(self) -> bool:
        """True when the latest inbound audio is (mostly) our own audio coming back."""
        if not self._sent:
            self.last_correlation = 0.0
            return False
        self.last_correlation = self._best_correlation()
        return self.last_correlation >= self.config.correlation

    # ── internals ────────────────────────────────────────────────────────────────────────
    def _samples(self, pcm: bytes) -> FloatArray:
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768.0
        step = self._step
        if step > 1:  # pairs averaged: a low-pass and a decimation in one
            samples = samples[: len(samples) - len(samples) % step].reshape(-1, step).mean(axis=1)
        return samples

    def _inbound(self) -> FloatArray:
        """The last ``window`` matched samples heard (zeros before the first)."""
        samples = np.concatenate([self._samples(pcm) for pcm in self._recent] or [np.zeros(0)])
        if len(samples) >= self._window:
            return samples[len(samples) - self._window :]
        return np.concatenate((np.zeros(self._window - len(samples)), samples))

    def _forget(self) -> None:
        oldest = self._now - self._window - self._max_delay
        while self._sent and self._sent[0][0] + len(self._sent[0][1]) < oldest:
            self._sent.popleft()

    def _reference(self, begin: int, end: int) -> FloatArray:
        """The sent audio over samples [begin, end) of the clock (zeros where none was)."""
        out = np.zeros(end - begin)
        for start, audio in self._sent:
            lo, hi = max(begin, start), min(end, start + len(audio))
            if lo < hi:
                out[lo - begin : hi - begin] = audio[lo - start : hi - start]
        return out

    def _best_correlation(self) -> float:
        x = self._inbound()
        x_energy = float(np.dot(x, x))
        if x_energy < (_MIN_LEVEL**2) * len(x):
            return 0.0
        w = len(x)
        # The inbound window ends at `now`: its echo source ended `lag` samples earlier.
        begin = self._now - w - self._max_delay
        ref = self._reference(begin, self._now + self._lead)
        if not ref.any():
            return 0.0
        size = 1 << int(len(ref) + w - 1).bit_length()
        corr = fft.irfft(fft.rfft(ref, size) * np.conj(fft.rfft(x, size)), size)
        corr = corr[: len(ref) - w + 1]  # corr[k] = sum x[n] * ref[k + n]
        squares = np.concatenate(([0.0], np.cumsum(ref * ref)))
        ref_energy = squares[w:] - squares[:-w]
        floor = (_MIN_LEVEL**2) * w
        usable = ref_energy > floor
        if not usable.any():
            return 0.0
        corr, ref_energy = corr[usable], ref_energy[usable]
        ncc = corr / np.sqrt(ref_energy * x_energy)
        best = int(np.argmax(ncc))
        score = float(ncc[best])
        if score >= _PATH_CORRELATION:  # clean echo: learn the path's gain
            gain = float(corr[best] / ref_energy[best])
            self._gain = gain if self._gain is None else self._gain + 0.2 * (gain - self._gain)
        if score >= self.config.correlation and self._gain is not None:
            # With the learned gain, the best echo estimate must remove most of the inbound
            # energy; what it leaves is someone else speaking over the echo.
            g = self._gain
            residual = np.maximum(x_energy - 2 * g * corr + g * g * ref_energy, 1e-12)
            self.last_cancel_db = 10.0 * float(np.log10(x_energy / float(np.min(residual))))
            if self.last_cancel_db < self.config.min_cancel_db:
                return min(score, self.config.correlation - 1e-6)
        return score
