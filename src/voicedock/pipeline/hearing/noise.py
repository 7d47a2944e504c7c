"""Noise suppression of the caller's audio, before voice activity detection and recognition.

RNNoise (a small recurrent network, Xiph's; its weights are compiled into the ``pyrnnoise``
wheel's library: nothing is downloaded at run time) hears 10 ms frames of 48 kHz audio. A
``NoiseSuppressor`` takes one call's frames at the call's rate, resamples them up with the
media layer's streaming ``Resampler``, denoises every whole 10 ms frame and resamples the
result back: each chunk given returns as many samples as it held, the speech in it about 33 ms
later (10 ms waiting for a whole frame, RNNoise's own window, the two filters). Its state is
the call's own; it is freed with it.

Off by default (``[speech.noise_suppression] enabled``), per assistant ``noise_suppression``;
``bench/noise.py`` measures word error, VAD accuracy and its CPU (docs/speech.md).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import weakref
from pathlib import Path

import numpy as np

from voicedock.media.codecs import Int16Array, Resampler

RNNOISE_RATE = 48_000
RNNOISE_FRAME = 480  # samples of one 10 ms frame at 48 kHz
_FLOATS = ctypes.POINTER(ctypes.c_float)


@functools.cache
def _rnnoise() -> ctypes.CDLL:
    """RNNoise's C library, as the ``pyrnnoise`` wheel ships it, loaded with the first call that
    suppresses noise: by its path, without importing the package (whose file-processing side
    imports audio and plotting libraries a call does not use)."""
    spec = importlib.util.find_spec("pyrnnoise")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("pyrnnoise is not installed")
    where = Path(next(iter(spec.submodule_search_locations)))
    library = ctypes.CDLL(str(where / "librnnoise.so"))
    library.rnnoise_create.argtypes = [ctypes.c_void_p]
    library.rnnoise_create.restype = ctypes.c_void_p
    library.rnnoise_destroy.argtypes = [ctypes.c_void_p]
    library.rnnoise_get_frame_size.restype = ctypes.c_int
    library.rnnoise_process_frame.argtypes = [ctypes.c_void_p, _FLOATS, _FLOATS]
    library.rnnoise_process_frame.restype = ctypes.c_float
    if library.rnnoise_get_frame_size() != RNNOISE_FRAME:
        raise OSError("RNNoise's frame is not 10 ms at 48 kHz")
    return library


def available() -> bool:
    """Whether RNNoise is installed (a dependency of voicedock: False only in a broken one)."""
    try:
        _rnnoise()
    except (ImportError, OSError):
        return False
    return True


class NoiseSuppressor:
    """One call's noise suppression: 16-bit mono PCM at ``sample_rate`` in, as much out."""

    def __init__(self, sample_rate: int) -> None:
        library = _rnnoise()
        self.sample_rate = sample_rate
        self._process_frame = library.rnnoise_process_frame
        self._state = library.rnnoise_create(None)
        weakref.finalize(self, library.rnnoise_destroy, self._state)
        self._up = Resampler(sample_rate, RNNOISE_RATE)
        self._down = Resampler(RNNOISE_RATE, sample_rate)
        self._frame = np.zeros(RNNOISE_FRAME, dtype=np.float32)  # RNNoise works in place
        self._pointer = self._frame.ctypes.data_as(_FLOATS)
        self._waiting = np.zeros(0, dtype=np.float32)  # 48 kHz input short of a frame
        # Output owed: primed with the 10 ms a frame waits for its last sample (at the call's
        # rate, a sample more for the resamplers' rounding), so every chunk has its own length.
        self._ready = np.zeros(sample_rate // 100 + 1, dtype=np.int16)

    def process(self, pcm: bytes) -> bytes:
        """The next chunk of the caller's audio, denoised: as many bytes as ``pcm``."""
        samples: Int16Array = np.frombuffer(pcm, dtype="<i2")
        if samples.size == 0:
            return b""
        high = self._up.process(samples).astype(np.float32)
        pending = np.concatenate((self._waiting, high))
        whole = len(pending) - len(pending) % RNNOISE_FRAME
        frames = pending[:whole].reshape(-1, RNNOISE_FRAME)
        denoised = np.empty_like(frames)
        for index, frame in enumerate(frames):
            self._frame[:] = frame
            self._process_frame(self._state, self._pointer, self._pointer)
            denoised[index] = self._frame
        self._waiting = pending[whole:]
        rounded = np.clip(np.rint(denoised.ravel()), -32768, 32767).astype(np.int16)
        back = self._down.process(rounded)
        ready = np.concatenate((self._ready, back))
        if len(ready) < samples.size:  # never with the priming; silence rather than a gap
            ready = np.concatenate((np.zeros(samples.size - len(ready), np.int16), ready))
        self._ready = ready[samples.size :]
        return ready[: samples.size].astype("<i2").tobytes()


__all__ = ["RNNOISE_RATE", "NoiseSuppressor", "available"]
