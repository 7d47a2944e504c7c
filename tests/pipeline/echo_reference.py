"""The echo gate's correlation as first written, kept to check the gate against: the sent
audio taken and transformed anew for every chunk (three FFTs), the sums of squares of every
lag recomputed, the inbound chunks decoded one by one. The gate
(``voicedock.pipeline.hearing.echo``) must decide as this does."""

from __future__ import annotations

import numpy as np
from numpy import fft

from voicedock.pipeline.hearing.echo import _MIN_LEVEL, _PATH_CORRELATION, EchoGate, FloatArray


class ReferenceEchoGate(EchoGate):
    """``EchoGate`` with its correlation computed the direct way, chunk by chunk."""

    def _best_correlation(self) -> float:
        x = self._inbound()
        x_energy = float(np.dot(x, x))
        if x_energy < (_MIN_LEVEL**2) * len(x):
            return 0.0
        w = len(x)
        begin = self._now - w - self._max_delay
        ref = self._reference(begin, self._now + self._lead)
        if not ref.any():
            return 0.0
        size = 1 << int(len(ref) + w - 1).bit_length()
        corr = fft.irfft(fft.rfft(ref, size) * np.conj(fft.rfft(x, size)), size)
        corr = corr[: len(ref) - w + 1]
        squares = np.concatenate(([0.0], np.cumsum(ref * ref)))
        ref_energy = squares[w:] - squares[:-w]
        usable = ref_energy > (_MIN_LEVEL**2) * w
        if not usable.any():
            return 0.0
        lags = self._max_delay - np.flatnonzero(usable)  # of each usable window
        corr, ref_energy = corr[usable], ref_energy[usable]
        ncc = corr / np.sqrt(ref_energy * x_energy)
        best = int(np.argmax(ncc))
        score = float(ncc[best])
        if score >= _PATH_CORRELATION:
            self._learn(float(corr[best] / ref_energy[best]), int(lags[best]))
        if score >= self.config.correlation and self._gain is not None:
            g = self._gain
            residual = np.maximum(x_energy - 2 * g * corr + g * g * ref_energy, 1e-12)
            self.last_cancel_db = 10.0 * float(np.log10(x_energy / float(np.min(residual))))
            if self.last_cancel_db < self.config.min_cancel_db:
                return min(score, self.config.correlation - 1e-6)
        return score

    def _inbound(self) -> FloatArray:
        samples = np.concatenate([self._samples(pcm) for pcm in self._recent] or [np.zeros(0)])
        if len(samples) >= self._window:
            return samples[len(samples) - self._window :]
        return np.concatenate((np.zeros(self._window - len(samples)), samples))
