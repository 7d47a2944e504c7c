"""Offline STT: faster-whisper (CTranslate2, int8 on CPU).

Whisper is not a streaming recogniser: it transcribes a stretch of audio at once. It is an
`IncrementalStt`: the turn engine has it transcribe the caller's utterance so far while the
caller speaks, passing the settled start of the transcript as a decoder prefix
(``pipeline/hearing/streaming_recognition.py``). With ``encoder_context = "auto"`` the encoder sees
the utterance plus a margin instead of Whisper's 30 s window, guarded against degenerate
output (``whisper_decoding.py``); ``"full"`` always encodes the 30 s window. The short
context needs a fixed ``language``; with ``language = None`` (detection) the full window is
used. The model is loaded once per process and shared by every call; loading and
transcription run in worker threads so the event loop keeps pacing audio meanwhile. It is a
``LocalStt``: the node runs its blocking ``transcribe_blocking`` in the recognition pool
(``pipeline/hearing/recognition.py``), ``workers`` transcriptions at once on one model
(CTranslate2's ``num_workers``); on its own, ``transcribe_continuing`` runs it in a thread of its
own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from msgspec import UNSET

from voicedock.domain.assistant_config import SttConfig
from voicedock.domain.vocabulary import keyterms_prompt
from voicedock.media.codecs import resample_signal
from voicedock.pipeline.audio import pcm16_to_float
from voicedock.pipeline.providers.base import (
    DetectedLanguage,
    ProviderConfigError,
    ProviderResponseError,
    ProviderUnavailableError,
    SpokenWord,
)
from voicedock.pipeline.providers.whisper.decoding import short_context_transcript
from voicedock.pipeline.providers.whisper.model import Audio, Segment, Tokenizer, WhisperModel
from voicedock.pipeline.providers.whisper.weights import ensure_model_dir

WHISPER_RATE = 16000
ENCODER_CONTEXTS = ("auto", "full")

_models: dict[tuple[str, str, str, int, int], WhisperModel] = {}
_models_lock = threading.Lock()


def load_model(
    model_path: str, device: str, compute_type: str, cpu_threads: int, workers: int = 1
) -> WhisperModel:
    """The process-wide WhisperModel for these settings (thread-safe, loads once);
    ``workers``: transcriptions it runs in parallel (threads calling it at once)."""
    key = (model_path, device, compute_type, cpu_threads, workers)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            # Never reach for the Hugging Face hub: only local files are used.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                import faster_whisper
            except ImportError as exc:
                raise ProviderUnavailableError("faster-whisper is not installed") from exc
            try:
                model = faster_whisper.WhisperModel(
                    model_path,
                    device=device,
                    compute_type=compute_type,
                    cpu_threads=cpu_threads,
                    num_workers=workers,
                    local_files_only=True,
                )
            except (OSError, RuntimeError, ValueError) as exc:
                raise ProviderUnavailableError(f"cannot load Whisper model: {exc}") from exc
            _models[key] = model
        return model


class WhisperStt:
    """`IncrementalStt` over faster-whisper, as its ``stt_config`` sets it (none: the packaged
    Whisper-base weights, English). ``streaming = false`` transcribes each utterance only
    once it has ended."""

    def __init__(self, config: SttConfig | None = None) -> None:
        config = SttConfig() if config is None else config
        if config.encoder_context not in ENCODER_CONTEXTS:
            raise ProviderConfigError(
                f"stt_config.encoder_context must be one of {', '.join(ENCODER_CONTEXTS)}"
            )
        self._config = config
        self._cache_dir = Path(config.cache_dir) if config.cache_dir else None
        self._language = "en" if config.language is UNSET else config.language  # None: detect
        self._short_context = config.encoder_context == "auto" and self._language is not None
        self._prompt = keyterms_prompt(config.keyterms)  # read before each transcript

    @classmethod
    def check_config(cls, config: SttConfig) -> None:
        """Raise ProviderConfigError naming the ``stt_config`` key that is wrong."""
        cls(config)

    @property
    def incremental(self) -> bool:
        return self._config.streaming

    def _model(self) -> WhisperModel:
        c = self._config
        path = c.model_path or str(ensure_model_dir(self._cache_dir))
        return load_model(path, c.device, c.compute_type, c.cpu_threads, max(1, c.num_workers))

    async def warm_up(self) -> None:
        """Load (and if needed assemble) the model ahead of the first call, and run it once
        on half a second of silence (its first transcription is slower than the next)."""
        await asyncio.to_thread(self._model)
        with contextlib.suppress(ProviderResponseError):
            await asyncio.to_thread(self.transcribe_blocking, bytes(WHISPER_RATE), WHISPER_RATE, "")

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        return await self.transcribe_continuing(pcm, sample_rate, "")

    async def transcribe_continuing(self, pcm: bytes, sample_rate: int, prefix: str) -> str:
        if not pcm:
            return ""
        return await asyncio.to_thread(self.transcribe_blocking, pcm, sample_rate, prefix)

    def transcribe_blocking(self, pcm: bytes, sample_rate: int, prefix: str) -> str:
        """``transcribe_continuing`` in the calling thread (the recognition pool's)."""
        if not pcm:
            return ""
        model = self._model()
        audio = resample_signal(pcm16_to_float(pcm), sample_rate, WHISPER_RATE)
        try:
            if self._short_context and len(audio) < 30 * WHISPER_RATE:
                tokenizer = tokenizer_of(model, self._language)
                text = short_context_transcript(
                    model,
                    tokenizer,
                    audio,
                    prefix,
                    prompt=self._prompt,
                    beam_size=self._config.beam_size,
                )
                if text is not None:
                    return text
                prefix = ""  # degenerate output: the full window, decoded afresh
            segments = self._segments(model, audio, prefix.strip() or None, self._prompt)
            return " ".join(s.text.strip() for s in segments).strip()
        except (RuntimeError, ValueError) as exc:
            raise ProviderResponseError(f"Whisper transcription failed: {exc}") from exc

    async def word_times(self, pcm: bytes, sample_rate: int) -> list[SpokenWord]:
        if not pcm:
            return []
        return await asyncio.to_thread(self.word_times_blocking, pcm, sample_rate)

    def word_times_blocking(self, pcm: bytes, sample_rate: int) -> list[SpokenWord]:
        """The words of ``pcm`` with their times, by Whisper's cross-attention alignment
        (``word_timestamps``), in the calling thread."""
        if not pcm:
            return []
        model = self._model()
        audio = resample_signal(pcm16_to_float(pcm), sample_rate, WHISPER_RATE)
        try:
            segments = self._segments(model, audio, None, word_timestamps=True)
            return [
                SpokenWord(word.word, float(word.start), float(word.end))
                for segment in segments
                for word in segment.words or ()
                if word.word.strip()
            ]
        except (RuntimeError, ValueError) as exc:
            raise ProviderResponseError(f"Whisper word alignment failed: {exc}") from exc

    async def detect_language(
        self, pcm: bytes, sample_rate: int, among: frozenset[str]
    ) -> DetectedLanguage | None:
        if not pcm:
            return None
        return await asyncio.to_thread(self.detect_language_blocking, pcm, sample_rate, among)

    def detect_language_blocking(
        self, pcm: bytes, sample_rate: int, among: frozenset[str]
    ) -> DetectedLanguage | None:
        """The most likely of ``among`` in ``pcm`` by Whisper's language detection (its
        probabilities of every language it knows, over the first 30 s), in the calling thread."""
        if not pcm or not among:
            return None
        model = self._model()
        audio = resample_signal(pcm16_to_float(pcm), sample_rate, WHISPER_RATE)
        try:
            _best, _probability, probabilities = model.detect_language(audio)
        except (RuntimeError, ValueError) as exc:
            raise ProviderResponseError(f"Whisper language detection failed: {exc}") from exc
        return most_likely(probabilities, among)

    def _segments(
        self,
        model: WhisperModel,
        audio: Audio,
        prefix: str | None,
        prompt: str = "",
        *,
        word_timestamps: bool = False,
    ) -> Iterable[Segment]:
        """faster-whisper's own decoding of ``audio`` (its 30 s window), after ``prompt``."""
        segments, _info = model.transcribe(
            audio,
            language=self._language,
            beam_size=self._config.beam_size,
            condition_on_previous_text=False,
            vad_filter=False,
            prefix=prefix,
            initial_prompt=prompt or None,
            word_timestamps=word_timestamps,
        )
        return segments

    async def aclose(self) -> None:
        # The model is shared by the process; nothing per-instance to release.
        return None


def tokenizer_of(model: WhisperModel, language: str | None) -> Tokenizer:
    """The transcription tokenizer of ``model`` (a faster-whisper ``WhisperModel``)."""
    from faster_whisper import tokenizer

    made: Tokenizer = tokenizer.Tokenizer(
        model.hf_tokenizer, True, task="transcribe", language=language
    )
    return made


def most_likely(
    probabilities: Iterable[tuple[str, float]], among: frozenset[str]
) -> DetectedLanguage | None:
    """The language of ``among`` with the highest of ``probabilities``, and its probability
    among those languages alone (the caller speaks one of them); none listed: None."""
    listed = [(p, lang) for lang, p in probabilities if lang in among]
    total = sum(p for p, _ in listed)
    if total <= 0:
        return None
    probability, language = max(listed)
    return DetectedLanguage(language, float(probability / total))
