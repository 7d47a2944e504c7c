"""Offline STT: faster-whisper (CTranslate2, int8 on CPU) on each endpointed utterance.

Whisper is not a streaming recogniser, which suits the turn engine: VAD decides where an
utterance ends and the whole utterance is transcribed at once. The model is loaded once per
process and shared by every call; loading and transcription run in worker threads so the
event loop keeps pacing audio meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from voicedock.media.codecs import resample_signal
from voicedock.pipeline.audio import pcm16_to_float
from voicedock.pipeline.providers.base import ProviderResponseError, ProviderUnavailableError
from voicedock.pipeline.providers.whisper_weights import ensure_model_dir

WHISPER_RATE = 16000

_models: dict[tuple[str, str, str, int], Any] = {}
_models_lock = threading.Lock()


def load_model(model_path: str, device: str, compute_type: str, cpu_threads: int) -> Any:
    """The process-wide WhisperModel for these settings (thread-safe, loads once)."""
    key = (model_path, device, compute_type, cpu_threads)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            # Never reach for the Hugging Face hub: only local files are used.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                from faster_whisper import WhisperModel
            except ImportError as exc:
                raise ProviderUnavailableError("faster-whisper is not installed") from exc
            try:
                model = WhisperModel(
                    model_path,
                    device=device,
                    compute_type=compute_type,
                    cpu_threads=cpu_threads,
                    local_files_only=True,
                )
            except (OSError, RuntimeError, ValueError) as exc:
                raise ProviderUnavailableError(f"cannot load Whisper model: {exc}") from exc
            _models[key] = model
        return model


class WhisperStt:
    """`Stt` over faster-whisper; `model_path=None` uses the packaged Whisper-base weights."""

    def __init__(
        self,
        *,
        model_path: str | None = None,
        cache_dir: str | None = None,
        language: str | None = "en",
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 0,
        beam_size: int = 1,
    ) -> None:
        self._model_path = model_path
        self._cache_dir = Path(cache_dir) if cache_dir else None
        self._language = language
        self._device = device
        self._compute_type = compute_type
        self._cpu_threads = cpu_threads
        self._beam_size = beam_size

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WhisperStt:
        return cls(
            model_path=config.get("model_path"),
            cache_dir=config.get("cache_dir"),
            language=config.get("language", "en"),
            device=str(config.get("device", "cpu")),
            compute_type=str(config.get("compute_type", "int8")),
            cpu_threads=int(config.get("cpu_threads", 0)),
            beam_size=int(config.get("beam_size", 1)),
        )

    def _model(self) -> Any:
        path = self._model_path or str(ensure_model_dir(self._cache_dir))
        return load_model(path, self._device, self._compute_type, self._cpu_threads)

    async def warm_up(self) -> None:
        """Load (and if needed assemble) the model ahead of the first call."""
        await asyncio.to_thread(self._model)

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        if not pcm:
            return ""
        return await asyncio.to_thread(self._transcribe_sync, pcm, sample_rate)

    def _transcribe_sync(self, pcm: bytes, sample_rate: int) -> str:
        model = self._model()
        audio = resample_signal(pcm16_to_float(pcm), sample_rate, WHISPER_RATE)
        try:
            segments, _info = model.transcribe(
                audio,
                language=self._language,
                beam_size=self._beam_size,
                condition_on_previous_text=False,
                vad_filter=False,
            )
            return " ".join(s.text.strip() for s in segments).strip()
        except (RuntimeError, ValueError) as exc:
            raise ProviderResponseError(f"Whisper transcription failed: {exc}") from exc

    async def aclose(self) -> None:
        # The model is shared by the process; nothing per-instance to release.
        return None
