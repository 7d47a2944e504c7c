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
cross-correlation over that range of lags. A strong match
(``>= correlation``) means the inbound audio is the echo of our own voice, however loud or
faint it came back. A caller speaking over the echo adds energy the sent audio does not
explain: the match drops below the threshold once their voice is about as loud as the echo,
and earlier through a single-tap echo canceller: matches clean enough to be echo alone teach
the gate the echo path's gain, and a window where the echo at that gain (at the best lag)
removes less than ``min_cancel_db`` of the inbound energy holds someone else's voice. Frames
decided as echo are not speech for the endpointer, so a barge-in still needs
``barge_in_speech_ms`` of speech that is *not* echo.

The correlation is computed in blocks of lags (overlap-save): the inbound window's FFT is
taken once per chunk at a short size and multiplied by the FFTs of the sent audio's blocks,
which are taken once for a span of the clock longer than the lags searched (``_Span``, with
each lag's energy) and serve every chunk whose lags fall inside it; the span is taken again
when the clock leaves it or audio queued or cut changes what it holds.

Pure and synchronous: no clock but the audio itself, so the same audio gives the same
decisions.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numpy import fft  # loaded with this module (numpy loads it on first use otherwise)

FloatArray = npt.NDArray[np.float64]

_MIN_LEVEL = 1e-4  # RMS (full scale 1.0) below which a window is silence: nothing to match
_PATH_CORRELATION = 0.95  # a match this clean is echo alone: its gain is the echo path's
_MATCH_RATE = 8000  # audio is matched at the telephone rate (16 kHz is averaged down)
# The longest echo path followed (``EchoGate._follow``): the audio sent may come back later
# than configured when it went out later than the clock placed it (the pacer's schedule
# re-anchored after a stall, the PBX's own scheduling on a loaded host), a delay that adds up
# over one long reply.
_LONGEST_DELAY_MS = 2000


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


@dataclass(slots=True, frozen=True)
class _Span:
    """The sent audio from sample ``start`` of the clock, as the correlation needs it: the
    FFTs of its blocks (block ``i``: the samples from ``i * hop``, ``size`` long, whose
    correlation with the inbound window gives lags ``i * hop`` … ``(i + 1) * hop - 1``), for
    each lag the energy of the window of sent audio it covers (infinite where too faint to
    match: such a lag is never the echo's), and for each block how many of its lags can match."""

    start: int
    end: int  # the sample after the last it holds
    spectra: npt.NDArray[np.complex128]  # (blocks, size // 2 + 1)
    energy: FloatArray
    usable: npt.NDArray[np.int64]  # per block

    @classmethod
    def of(cls, start: int, ref: FloatArray, window: int, size: int, hop: int) -> _Span:
        squares = np.concatenate(([0.0], np.cumsum(ref * ref)))
        energy = squares[window:] - squares[:-window]
        usable = energy > (_MIN_LEVEL**2) * window
        step = ref.strides[0]  # the blocks: overlapping views of ref, `hop` apart
        count = (len(ref) - size) // hop + 1
        blocks = np.lib.stride_tricks.as_strided(ref, (count, size), (hop * step, step))
        return cls(
            start,
            start + len(ref),
            fft.rfft(blocks, axis=-1),
            np.where(usable, energy, np.inf),
            usable.reshape(len(blocks), hop).sum(axis=1),
        )

    def then(self, blocks: int, hop: int, tail: _Span) -> _Span:
        """This span without its first ``blocks`` blocks, followed by ``tail`` (as many
        blocks, from where this one's blocks end): the clock moved on."""
        return _Span(
            self.start + blocks * hop,
            tail.end,
            np.concatenate((self.spectra[blocks:], tail.spectra)),
            np.concatenate((self.energy[blocks * hop :], tail.energy)),
            np.concatenate((self.usable[blocks:], tail.usable)),
        )


@dataclass(slots=True)
class _Scratch:
    """Buffers one correlation works in, shared by the gates of a thread: a correlation runs
    from start to end without yielding, and a gate keeps nothing in them between chunks."""

    size: int
    hop: int
    blocks: int  # the most blocks the lags searched fall in
    searched: int
    padded: FloatArray = field(init=False)  # the inbound window, then zeros
    spectrum: npt.NDArray[np.complex128] = field(init=False)
    products: npt.NDArray[np.complex128] = field(init=False)
    outputs: FloatArray = field(init=False)
    lags: FloatArray = field(init=False)  # the blocks' lags, in order
    matches: FloatArray = field(init=False)  # one value per lag searched
    cancelled: FloatArray = field(init=False)

    def __post_init__(self) -> None:
        self.padded = np.zeros(self.size)
        self.spectrum = np.empty(self.size // 2 + 1, dtype=np.complex128)
        self.products = np.empty((self.blocks, self.size // 2 + 1), dtype=np.complex128)
        self.outputs = np.empty((self.blocks, self.size))
        self.lags = np.empty(self.blocks * self.hop)
        self.matches = np.empty(self.searched)
        self.cancelled = np.empty(self.searched)

    @classmethod
    def get(cls, size: int, hop: int, blocks: int, searched: int) -> _Scratch:
        cached: dict[tuple[int, int, int, int], _Scratch] = _scratch.__dict__.setdefault(
            "by_shape", {}
        )
        key = (size, hop, blocks, searched)
        scratch = cached.get(key)
        if scratch is None:
            scratch = cached[key] = cls(size, hop, blocks, searched)
        return scratch


_scratch = threading.local()


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
        self._rate = rate
        # The longest echo path looked for: the configured one, or longer while the echo
        # comes back later than that (``_follow``), up to ``_longest``.
        self._configured_delay = self._max_delay = rate * cfg.max_delay_ms // 1000
        self._longest = max(self._max_delay, rate * _LONGEST_DELAY_MS // 1000)
        self._lead = rate * cfg.lead_ms // 1000
        # The latest inbound chunks, as received, covering the window: decoded only when a
        # match is asked for (``hear`` runs on every caller frame; ``is_echo`` rarely).
        self._recent: deque[bytes] = deque()
        self._recent_samples = 0  # matched samples in _recent
        self._gain: float | None = None  # echo path gain, learned from clean echo
        self.last_correlation = 0.0  # the best match of the last chunk (0: nothing sent)
        self.last_cancel_db = 0.0
        w = self._window
        self._size = 1 << (2 * w - 1).bit_length()
        self._hop = self._size - w + 1
        self._span: _Span | None = None
        self._searching(self._max_delay)

    def _searching(self, max_delay: int) -> None:
        """Look for echo paths up to ``max_delay`` samples. The correlation, block by block:
        ``_searched`` lags from ``now - window - max_delay``, ``_hop`` of them per FFT of
        ``_size``; a span holds ``_span_blocks`` blocks, room for the clock to advance about a
        quarter of a second before it is taken again."""
        self._max_delay = max_delay
        self._searched = max_delay + self._lead + 1
        self._most = -(-self._searched // self._hop) + 1  # blocks a chunk's lags may fall in
        self._span_blocks = self._most + max(1, self._rate // 4 // self._hop)
        self._span = None

    def _follow(self, lag: int) -> None:
        """Clean echo came back ``lag`` samples after the clock placed it: keep looking as far
        as that lag and half the configured path beyond, in whole hops (the range grows at
        once, shrinks once the echo comes back sooner by more than half the configured
        path), never shorter than configured nor longer than ``_LONGEST_DELAY_MS``."""
        base, hop = self._configured_delay, self._hop
        wanted = min(self._longest, max(base, -(-(lag + base // 2) // hop) * hop))
        if wanted > self._max_delay or wanted < self._max_delay - base // 2:
            self._searching(wanted)

    def _learn(self, gain: float, lag: int) -> None:
        """Clean echo (a match of ``_PATH_CORRELATION`` or more) of ``gain`` at ``lag``: the
        echo path's gain, averaged, and how far to look for it (``_follow``)."""
        self._gain = gain if self._gain is None else self._gain + 0.2 * (gain - self._gain)
        self._follow(lag)

    def play(self, pcm: bytes) -> None:
        """Assistant audio queued now, behind what is queued already."""
        if not self.config.enabled or not pcm:
            return
        audio = self._samples(pcm)
        start = max(self._now, self._queued_end)
        self._sent.append((start, audio))
        self._queued_end = start + len(audio)
        if self._span is not None and start < self._span.end:
            self._span = None  # the span holds where this audio goes

    def cut(self) -> None:
        """What is queued and not sent yet never will be (barge-in flush)."""
        if self._queued_end <= self._now:
            return
        self._queued_end = self._now
        self._span = None
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
        if self._sent:  # nothing sent: nothing to forget (and no span kept)
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
        step, w = self._step, self._window
        recent = self._recent
        if any(len(pcm) % (2 * step) for pcm in recent):  # a chunk's last sample left unpaired
            samples = np.concatenate([self._samples(pcm) for pcm in recent] or [np.zeros(0)])
        else:  # decoded at once: the same values as chunk by chunk (sums of int16 are exact)
            heard = np.frombuffer(b"".join(recent), dtype="<i2")[-w * step :]
            if step > 1:
                heard = heard.reshape(-1, step).sum(axis=1)
            samples = heard / (32768.0 * step)
        if len(samples) >= w:
            return samples[len(samples) - w :]
        return np.concatenate((np.zeros(w - len(samples)), samples))

    def _forget(self) -> None:
        oldest = self._now - self._window - self._max_delay
        while self._sent and self._sent[0][0] + len(self._sent[0][1]) < oldest:
            self._sent.popleft()
        if not self._sent:
            self._span = None

    def _reference(self, begin: int, end: int) -> FloatArray:
        """The sent audio over samples [begin, end) of the clock (zeros where none was)."""
        out = np.zeros(end - begin)
        for start, audio in self._sent:
            lo, hi = max(begin, start), min(end, start + len(audio))
            if lo < hi:
                out[lo - begin : hi - begin] = audio[lo - start : hi - start]
        return out

    def _span_at(self, begin: int) -> _Span:
        """The span holding the sent audio of the lags searched from ``begin``: this one, or
        this one moved on by whole blocks (only the new blocks transformed), or a new one."""
        span, hop, w = self._span, self._hop, self._window
        if (
            span is not None
            and span.start <= begin <= span.start + len(span.energy) - self._searched
        ):
            return span
        moved = (begin - span.start) // hop if span is not None else 0
        if span is not None and 0 < moved < self._span_blocks:
            start = span.start + self._span_blocks * hop  # where its blocks end
            tail = _Span.of(
                start, self._reference(start, start + moved * hop + w - 1), w, self._size, hop
            )
            span = span.then(moved, hop, tail)
        else:
            end = begin + self._span_blocks * hop + w - 1
            span = _Span.of(begin, self._reference(begin, end), w, self._size, hop)
        self._span = span
        return span

    def _best_correlation(self) -> float:
        x = self._inbound()
        x_energy = float(np.dot(x, x))
        if x_energy < (_MIN_LEVEL**2) * len(x):
            return 0.0
        w = len(x)
        # The inbound window ends at `now`: its echo source ended `lag` samples earlier.
        begin = self._now - w - self._max_delay
        span = self._span_at(begin)
        lo = begin - span.start
        hi = lo + self._searched  # the lags searched, as windows of the span
        # corr[k] = sum x[n] * sent[k + n], block by block: circular over `size`, which no
        # lag of a block reaches past (hop - 1 + w - 1 < size).
        work = _Scratch.get(self._size, self._hop, self._most, self._searched)
        first, last = lo // self._hop, (hi - 1) // self._hop + 1
        if not span.usable[first:last].any():
            return 0.0  # nothing sent loud enough to match
        blocks = last - first
        work.padded[:w] = x
        spectrum = np.conjugate(fft.rfft(work.padded, out=work.spectrum), out=work.spectrum)
        products = np.multiply(span.spectra[first:last], spectrum, out=work.products[:blocks])
        out = fft.irfft(products, self._size, axis=-1, out=work.outputs[:blocks])
        lags = work.lags[: blocks * self._hop]
        lags.reshape(blocks, self._hop)[:] = out[:, : self._hop]
        corr = lags[lo - first * self._hop : hi - first * self._hop]
        ref_energy = span.energy[lo:hi]
        # The normalized correlation up to the inbound energy's factor, 0 where not usable.
        matches = np.divide(corr, np.sqrt(ref_energy, out=work.matches), out=work.matches)
        best = int(np.argmax(matches))
        if ref_energy[best] == np.inf:  # no usable lag matches positively (or none is usable)
            usable = ref_energy < np.inf
            if not usable.any():
                return 0.0
            return float(np.max(corr[usable] / np.sqrt(ref_energy[usable] * x_energy)))
        score = float(corr[best] / np.sqrt(ref_energy[best] * x_energy))
        if score >= _PATH_CORRELATION:  # clean echo: learn the path's gain and delay
            self._learn(float(corr[best] / ref_energy[best]), self._max_delay - best)
        if score >= self.config.correlation and self._gain is not None:
            # With the learned gain, the best echo estimate must remove most of the inbound
            # energy; what it leaves is someone else speaking over the echo.
            g = self._gain
            residual = np.multiply(corr, 2 * g, out=work.cancelled)
            np.subtract(x_energy, residual, out=residual)
            residual += np.multiply(ref_energy, g * g, out=work.matches)
            least = max(float(np.min(residual)), 1e-12)  # infinite where not usable
            self.last_cancel_db = 10.0 * float(np.log10(x_energy / least))
            if self.last_cancel_db < self.config.min_cancel_db:
                return min(score, self.config.correlation - 1e-6)
        return score
