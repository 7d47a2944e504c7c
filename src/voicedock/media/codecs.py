"""Codecs of the call-audio path (pure, numpy only); the formats are ``voicedock.domain.audio``.

* G.711 µ-law and A-law follow the Sun Microsystems reference algorithm (``g711.c``), which is
  also what CPython's former ``audioop`` module used: the tables below give byte-identical
  results to ``audioop.lin2ulaw``/``ulaw2lin``/``lin2alaw``/``alaw2lin`` for 16-bit samples.
* Encoding and decoding are single numpy table look-ups (65 536-entry encode tables indexed by the
  raw int16 bit pattern, 256-entry decode tables), so a 20 ms frame costs about a microsecond.
* ``Resampler`` is a streaming polyphase windowed-sinc resampler for any rational rate ratio
  (8 k, 16 k, 22.05 k, 24 k, ...). It keeps its filter history between calls, so a stream cut into
  20 ms frames resamples exactly like the whole signal would. It is voicedock's one resampler:
  ``resample`` runs it once over int16 samples, ``resample_signal`` over a whole float signal
  (a synthesized utterance, audio for the recognizer) with the filter's delay taken out.
"""

from __future__ import annotations

import functools
import math
from typing import Final

import numpy as np
import numpy.typing as npt

from voicedock.domain.audio import AudioFormat

Int16Array = npt.NDArray[np.int16]
FloatArray = npt.NDArray[np.float32]

# --- G.711 tables (Sun reference algorithm, vectorised) -----------------------------------------

_ALL_INT16: Final = np.arange(-32768, 32768, dtype=np.int32)
_SEG_UEND: Final = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_SEG_AEND: Final = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    pcm = _ALL_INT16 >> 2  # the reference works on 14-bit samples
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), 8159) + 0x21  # CLIP, then BIAS >> 2
    seg = np.searchsorted(_SEG_UEND, magnitude, side="left")
    mantissa = (magnitude >> (np.minimum(seg, 7) + 1)) & 0x0F
    code = np.where(seg >= 8, 0x7F, (seg << 4) | mantissa) ^ mask
    return _by_bit_pattern(code)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    pcm = _ALL_INT16 >> 3  # the reference works on 13-bit samples
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    magnitude = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = np.searchsorted(_SEG_AEND, magnitude, side="left")
    shift = np.where(seg < 2, 1, np.minimum(seg, 7))
    code = np.where(seg >= 8, 0x7F, (seg << 4) | ((magnitude >> shift) & 0x0F)) ^ mask
    return _by_bit_pattern(code)


def _by_bit_pattern(code_for_value: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    """Re-index a table ordered by value (-32768..32767) by the uint16 bit pattern instead."""
    table = np.empty(65536, dtype=np.uint8)
    table[_ALL_INT16.astype(np.uint16)] = code_for_value.astype(np.uint8)
    return table


def _build_ulaw_decode() -> Int16Array:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _build_alaw_decode() -> Int16Array:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


_ULAW_ENCODE: Final = _build_ulaw_encode()
_ALAW_ENCODE: Final = _build_alaw_encode()
_ULAW_DECODE: Final = _build_ulaw_decode()
_ALAW_DECODE: Final = _build_alaw_decode()


def _as_int16(pcm: bytes | bytearray | memoryview | Int16Array) -> Int16Array:
    if isinstance(pcm, np.ndarray):
        return pcm.astype(np.int16, copy=False)
    return np.frombuffer(pcm, dtype="<i2")


def ulaw_encode(pcm: bytes | bytearray | memoryview | Int16Array) -> bytes:
    """16-bit signed little-endian PCM (bytes or int16 array) → µ-law bytes."""
    return _ULAW_ENCODE[_as_int16(pcm).view(np.uint16)].tobytes()


def alaw_encode(pcm: bytes | bytearray | memoryview | Int16Array) -> bytes:
    """16-bit signed little-endian PCM (bytes or int16 array) → A-law bytes."""
    return _ALAW_ENCODE[_as_int16(pcm).view(np.uint16)].tobytes()


def ulaw_decode(data: bytes | bytearray | memoryview) -> Int16Array:
    """µ-law bytes → int16 samples."""
    return _ULAW_DECODE.take(np.frombuffer(data, dtype=np.uint8))  # take: cheaper than []


def alaw_decode(data: bytes | bytearray | memoryview) -> Int16Array:
    """A-law bytes → int16 samples."""
    return _ALAW_DECODE.take(np.frombuffer(data, dtype=np.uint8))  # take: cheaper than []


def decode(fmt: AudioFormat, payload: bytes | bytearray | memoryview) -> Int16Array:
    """Wire bytes of ``fmt`` → int16 samples at ``fmt.sample_rate``."""
    if fmt.name == "ulaw":
        return ulaw_decode(payload)
    if fmt.name == "alaw":
        return alaw_decode(payload)
    # slin* is host byte order in Asterisk; every platform it runs on is little-endian.
    return np.frombuffer(payload, dtype="<i2").astype(np.int16, copy=False)


def encode(fmt: AudioFormat, pcm: Int16Array) -> bytes:
    """int16 samples at ``fmt.sample_rate`` → wire bytes of ``fmt``."""
    if fmt.name == "ulaw":
        return ulaw_encode(pcm)
    if fmt.name == "alaw":
        return alaw_encode(pcm)
    return pcm.astype("<i2", copy=False).tobytes()


# --- Resampling ---------------------------------------------------------------------------------


class Resampler:
    """Streaming rational-ratio resampler (polyphase FIR, Kaiser-windowed sinc).

    ``process()`` accepts chunks of any length and returns every output sample that the input so
    far determines; the filter history is carried over between calls. The filter adds a constant
    delay of about ``taps_per_phase / 2`` input samples (1 ms at 16 kHz in with the defaults).
    Cost per output sample is ``taps`` multiply-adds: one numpy convolution for an integer
    decimation (16/24/48 kHz to 8 kHz), a gather + dot otherwise. The filter of a ratio is
    designed once per process.
    """

    def __init__(
        self, from_rate: int, to_rate: int, *, taps_per_phase: int = 32, aligned: bool = False
    ) -> None:
        """``aligned``: the filter's delay taken out (output n is the input at ``n/to_rate``,
        to within ``signal_offset_seconds``), for a signal that ends: its last outputs, held
        back by the filter, come out with ``flush``."""
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError("sample rates must be positive")
        g = math.gcd(from_rate, to_rate)
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._up = to_rate // g
        self._down = from_rate // g
        # Downsampling needs a longer filter (in input samples) for the same transition width.
        self._taps = max(2, math.ceil(taps_per_phase * max(1.0, self._down / self._up)))
        self._bank = _filter_bank(self._up, self._down, self._taps)
        self._history = np.zeros(self._taps - 1, dtype=np.float32)
        self._aligned = aligned
        # Time of the next output, in 1/up input samples from the chunk start; aligned, the
        # first output is one filter delay in (on the 1/up grid).
        self._next = (self._up * self._taps - 1) // 2 if aligned else 0
        self._taken = 0  # input samples so far
        self._given = 0  # output samples so far

    @property
    def delay_seconds(self) -> float:
        """Constant delay the filter adds: output n is the input at ``n/to_rate - delay``."""
        return (self._up * self._taps - 1) / (2.0 * self._up) / self.from_rate

    @property
    def signal_offset_seconds(self) -> float:
        """What ``resample_signal`` leaves of the delay: its output n is the input at
        ``n/to_rate - signal_offset_seconds``; at most half an input sample (none when the
        filter's centre falls on the ``1/up`` grid)."""
        length = self._up * self._taps
        return ((length - 1) % 2) / (2.0 * self._up) / self.from_rate

    def process(self, samples: Int16Array) -> Int16Array:
        """Resample the next chunk of int16 samples; returns the int16 output it determines."""
        if self._up == self._down:
            return samples.astype(np.int16, copy=True)
        return _rounded(self._filter(samples.astype(np.float32)))

    def flush(self) -> Int16Array:
        """An aligned resampler's last outputs, which the filter held back: the whole output
        is then ``len(input) * to_rate // from_rate`` samples, as ``resample_signal`` gives.
        The resampler starts again from silence after it."""
        if self._up == self._down:
            return np.zeros(0, dtype=np.int16)
        return _rounded(self._flush())

    def _flush(self) -> npt.NDArray[np.floating]:
        if not self._aligned:
            raise ValueError("only an aligned resampler is flushed")
        wanted = self._taken * self._up // self._down - self._given
        tail = self._filter(np.zeros(self._taps, dtype=np.float32))[: max(0, wanted)]
        self.reset()
        return tail

    def _filter(self, samples: FloatArray) -> npt.NDArray[np.floating]:
        """The output the next chunk determines, unrounded (the rates differ)."""
        n_in = len(samples)
        buffer = np.concatenate((self._history, samples))
        span = n_in * self._up
        # Outputs whose input position falls inside this chunk (ceil division).
        count = 0 if self._next >= span else -(-(span - self._next) // self._down)
        out: npt.NDArray[np.floating]
        if self._up == 1:
            # Integer decimation (16/24/48 kHz → 8 kHz): one phase, so the outputs are every
            # ``down``-th point of one convolution (its tight loop, no gathered copy: faster
            # than computing only those points, measured).
            full = np.convolve(buffer, self._bank[0], "valid")
            out = full[self._next : self._next + count * self._down : self._down]
        else:
            positions = self._next + np.arange(count, dtype=np.int64) * self._down
            base = positions // self._up + (self._taps - 1)  # index of x[i] inside `buffer`
            window = base[:, None] - np.arange(self._taps)[None, :]
            out = np.einsum("ij,ij->i", buffer[window], self._bank[positions % self._up])
        self._next += count * self._down - span
        self._history = buffer[len(buffer) - (self._taps - 1) :]
        self._taken += n_in
        self._given += count
        return out

    def reset(self) -> None:
        """Back to silence, as constructed."""
        self._history = np.zeros(self._taps - 1, dtype=np.float32)
        self._next = (self._up * self._taps - 1) // 2 if self._aligned else 0
        self._taken = self._given = 0


@functools.lru_cache(maxsize=32)
def _filter_bank(up: int, down: int, taps: int) -> npt.NDArray[np.float32]:
    """The polyphase filter of a ratio, designed once per process (``Resampler``s of a ratio
    share it read-only): ``bank[phase, k]`` is the tap applied to ``x[i - k]`` in that phase."""
    length = up * taps
    # Cutoff at 90 % of the lower Nyquist frequency, normalised to the upsampled rate.
    cutoff = 0.9 * 0.5 / max(up, down)
    n = np.arange(length) - (length - 1) / 2.0
    proto = 2.0 * cutoff * np.sinc(2.0 * cutoff * n) * np.kaiser(length, 8.0)
    proto *= up / proto.sum()  # unity DC gain after zero-stuffing by `up`
    bank: npt.NDArray[np.float32] = proto.reshape(taps, up).T.astype(np.float32).copy()
    bank.flags.writeable = False
    return bank


def resample(samples: Int16Array, from_rate: int, to_rate: int) -> Int16Array:
    """One-shot resampling of a whole signal (a fresh ``Resampler``)."""
    return Resampler(from_rate, to_rate).process(samples)


def resample_signal(samples: npt.NDArray[np.floating], from_rate: int, to_rate: int) -> FloatArray:
    """A whole float signal through ``Resampler``'s filter, aligned with its input: output n
    is the input at ``n/to_rate`` (to within ``signal_offset_seconds``, at most half an input
    sample), the tail flushed out, ``len(samples) * to_rate // from_rate`` samples; no rounding
    nor clipping. A copy when the rates match."""
    signal = np.asarray(samples, dtype=np.float32)
    if from_rate == to_rate or signal.size == 0:
        return signal.copy()
    resampler = Resampler(from_rate, to_rate, aligned=True)
    parts = (resampler._filter(signal), resampler._flush())
    result: FloatArray = np.concatenate(parts).astype(np.float32)
    return result


def _rounded(samples: npt.NDArray[np.floating]) -> Int16Array:
    result: Int16Array = np.clip(np.rint(samples), -32768, 32767).astype(np.int16)
    return result
