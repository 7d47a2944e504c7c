"""Silero VAD: a small neural voice activity detector, the alternative to webrtcvad.

The ONNX model is the one faster-whisper ships in its package (``faster_whisper/assets/
silero_vad_v6.onnx``, MIT): found through the installed package's files, never downloaded,
and faster-whisper itself is not imported. It reads 16 kHz audio in windows of 512 samples
(32 ms) with the 64 samples before each as context, carrying its recurrent state from window
to window; telephone audio is upsampled as it flows (the media layer's streaming resampler).

``SileroVad.is_speech`` takes one frame of the call (10/20/30 ms at 8 or 16 kHz) and answers
with the state after the latest whole window: speech from a window at or above ``threshold``
until one below ``threshold - HYSTERESIS`` (Silero's own rule), so a frame's answer lags its
audio by at most one window. Each window is one onnxruntime run of about a tenth of a
millisecond on one core (``bench/turn_taking.py`` measures it), cheap enough for the caller's
frame path; the session is shared by the whole process (onnxruntime sessions may run from
several threads at once), the state is per detector.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from voicedock.media.codecs import Resampler

MODEL_RATE = 16000
WINDOW = 512  # samples per model run at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous window given with each
HYSTERESIS = 0.15  # speech lasts until a window falls this far below the threshold
_ASSET = "silero_vad_v6.onnx"


class OnnxSession(Protocol):
    """An ``onnxruntime.InferenceSession``: float32 tensors by input name in, every output
    (in the model's order) out."""

    def run(
        self, output_names: None, input_feed: Mapping[str, npt.NDArray[np.float32]]
    ) -> list[npt.NDArray[np.float32]]: ...


_session: OnnxSession | None = None
_session_lock = threading.Lock()


def model_path() -> Path | None:
    """The Silero VAD model in the installed faster-whisper package; None without it."""
    try:
        spec = importlib.util.find_spec("faster_whisper")
    except (ImportError, ValueError):
        return None
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "assets" / _ASSET
        if path.is_file():
            return path
    return None


def available() -> bool:
    """Whether Silero VAD can run on this node (its model and onnxruntime are installed)."""
    return model_path() is not None and importlib.util.find_spec("onnxruntime") is not None


def _shared_session() -> OnnxSession:
    global _session
    with _session_lock:
        if _session is None:
            path = model_path()
            if path is None:
                raise RuntimeError(f"Silero VAD needs faster-whisper's {_ASSET} (not installed)")
            ort = importlib.import_module("onnxruntime")
            options = ort.SessionOptions()
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = 1
            options.log_severity_level = 4
            _session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        return _session


class SileroVad:
    """One stream's Silero VAD: frames in order, a decision per frame (``is_speech``)."""

    def __init__(self, sample_rate: int, threshold: float = 0.5) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError("the Silero VAD threshold must lie between 0 and 1")
        self._session = _shared_session()
        self._threshold = threshold
        self._release = max(0.01, threshold - HYSTERESIS)
        self._upsample = Resampler(sample_rate, MODEL_RATE) if sample_rate != MODEL_RATE else None
        self._pending = np.zeros(0, dtype=np.float32)  # 16 kHz samples not yet in a window
        self._h = np.zeros((1, 1, 128), dtype=np.float32)  # the model's recurrent state
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._probability = 0.0
        self._speaking = False

    @property
    def probability(self) -> float:
        """The latest window's speech probability (0 before the first window)."""
        return self._probability

    def is_speech(self, pcm: bytes) -> bool:
        """Feed the next frame (int16 mono at the stream's rate): speech at its end?"""
        samples = np.frombuffer(pcm, dtype="<i2")
        if self._upsample is not None:
            samples = self._upsample.process(samples)
        audio = np.concatenate((self._pending, samples.astype(np.float32) / 32768.0))
        whole = len(audio) - len(audio) % WINDOW
        for start in range(0, whole, WINDOW):
            self._window(audio[start : start + WINDOW])
        self._pending = audio[whole:]
        return self._speaking

    def _window(self, window: npt.NDArray[np.float32]) -> None:
        batch = np.concatenate((self._context, window))[np.newaxis, :]
        out, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self._context = window[-CONTEXT:]
        self._probability = float(np.asarray(out).reshape(-1)[0])
        if self._probability >= self._threshold:
            self._speaking = True
        elif self._probability < self._release:
            self._speaking = False

    def reset(self) -> None:
        """Forget the stream so far (the model's state, the audio not yet in a window)."""
        self._h[:] = 0.0
        self._c[:] = 0.0
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        if self._upsample is not None:
            self._upsample.reset()
        self._probability = 0.0
        self._speaking = False
