"""Has the caller finished their turn? A model that hears it in the audio: Smart Turn v3.2.

Smart Turn v3.2 (BSD-2, pipecat-ai) is a small Whisper-encoder classifier: it reads the last
8 seconds of a turn at 16 kHz as Whisper's 80-bin log-mel features and returns the
probability that the speaker has finished; above ``COMPLETE_THRESHOLD`` the turn is complete.
Its weights ship inside the ``pipecat-ai`` wheel (installed without its dependencies by
``scripts/install-offline-speech.sh``): they are found through the package's installed files,
never downloaded, and none of pipecat is imported. The features come from faster-whisper's
extractor (the offline speech engines' own), on the waveform normalized to zero mean and
unit variance as the model was trained.

``TurnModel.predict`` is blocking CPU work (tens of milliseconds for 8 s of audio on one core): it
runs in the node's speech worker pool (``turn_detection.py``), never on the event loop. One
model per process, loaded once; onnxruntime sessions may run from several threads at once.
"""

from __future__ import annotations

import functools
import importlib.metadata
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from voicedock.media.codecs import resample_signal
from voicedock.pipeline.audio import pcm16_to_float
from voicedock.pipeline.hearing.silero_vad import OnnxSession
from voicedock.pipeline.providers.base import ProviderUnavailableError

MODEL_RATE = 16000
WINDOW_S = 8  # the model reads the last 8 seconds of the turn
COMPLETE_THRESHOLD = 0.5
_DISTRIBUTION = "pipecat-ai"
_WEIGHTS = "smart-turn-v3.2-cpu.onnx"
_NORM_EPS = 1e-7


class MelFeatures(Protocol):
    """faster-whisper's ``FeatureExtractor``: log-mel features of 16 kHz audio."""

    def __call__(self, waveform: npt.NDArray[np.float32], padding: int) -> object: ...


@dataclass(slots=True, frozen=True)
class TurnPrediction:
    """The model's reading of a turn: the probability it is finished, and the verdict."""

    probability: float

    @property
    def complete(self) -> bool:
        return self.probability > COMPLETE_THRESHOLD


def weights_path() -> Path | None:
    """Where the installed ``pipecat-ai`` package keeps Smart Turn's weights; None when it is
    not installed (or has no such file)."""
    try:
        dist = importlib.metadata.distribution(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name == _WEIGHTS:
            path = Path(str(dist.locate_file(file)))
            return path if path.is_file() else None
    return None


@functools.cache
def installed() -> bool:
    """Whether the turn model can be loaded on this node (its weights and runtimes are here)."""
    if weights_path() is None:
        return False
    try:
        import faster_whisper.feature_extractor  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


class TurnModel:
    """Smart Turn v3.2 over onnxruntime: ``predict(pcm16, sample_rate)``."""

    def __init__(self, weights: Path, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
            from faster_whisper.feature_extractor import FeatureExtractor
        except ImportError as exc:
            raise ProviderUnavailableError(f"turn model runtime missing: {exc.name}") from exc
        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session: OnnxSession = ort.InferenceSession(
                str(weights), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ProviderUnavailableError(f"cannot load the turn model: {exc}") from exc
        self._features: MelFeatures = FeatureExtractor(feature_size=80, chunk_length=WINDOW_S)

    def predict(self, pcm: bytes, sample_rate: int) -> TurnPrediction:
        """The model's reading of a turn's audio (little-endian int16 mono at any rate; the
        last ``WINDOW_S`` seconds count)."""
        audio = resample_signal(pcm16_to_float(pcm), sample_rate, MODEL_RATE)
        features = self.features(audio)
        outputs = self._session.run(None, {"input_features": features[np.newaxis]})
        return TurnPrediction(float(np.asarray(outputs[0]).reshape(-1)[0]))

    def features(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """80 x 800 log-mel features of 16 kHz audio: its last ``WINDOW_S`` seconds,
        zero-padded in front, normalized to zero mean and unit variance."""
        size = WINDOW_S * MODEL_RATE
        window = np.zeros(size, dtype=np.float32)
        tail = audio[-size:]
        if tail.size:
            window[size - tail.size :] = tail
        window = (window - window.mean()) / np.sqrt(window.var() + _NORM_EPS)
        mel = self._features(window, padding=0)
        return np.asarray(mel, dtype=np.float32)


_model: TurnModel | None = None
_model_lock = threading.Lock()


def load_turn_model() -> TurnModel:
    """The process-wide turn model (thread-safe, loads once); ProviderUnavailableError when
    it is not installed."""
    global _model
    with _model_lock:
        if _model is None:
            weights = weights_path()
            if weights is None:
                raise ProviderUnavailableError(
                    f"the turn model is not installed (package {_DISTRIBUTION})"
                )
            _model = TurnModel(weights)
        return _model


def predict_blocking(pcm: bytes, sample_rate: int) -> TurnPrediction:
    """The process-wide turn model's reading, in the calling thread (a pool's worker)."""
    return load_turn_model().predict(pcm, sample_rate)
