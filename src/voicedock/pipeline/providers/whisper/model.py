"""What voicedock uses of a faster-whisper model and its tokenizer, as types.

faster-whisper and CTranslate2 ship no type information; these protocols name the few
attributes and methods ``stt.py`` and ``decoding.py`` call, so that a change of the library's
surface shows up in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Audio = npt.NDArray[np.float32]  # 16 kHz mono samples in [-1, 1]


class Word(Protocol):
    """One word of a segment transcribed with ``word_timestamps`` (seconds of the audio)."""

    @property
    def word(self) -> str: ...

    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...


class Segment(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def words(self) -> Sequence[Word] | None: ...


class Generation(Protocol):
    """One prompt's result of ``generate``."""

    @property
    def sequences_ids(self) -> Sequence[Sequence[int]]: ...


class Decoder(Protocol):
    """The CTranslate2 ``Whisper`` model inside a ``WhisperModel``."""

    def encode(self, features: object) -> object: ...

    def generate(
        self,
        encoder_output: object,
        prompts: list[list[int]],
        *,
        beam_size: int,
        max_length: int,
        suppress_blank: bool,
    ) -> Sequence[Generation]: ...


class WhisperModel(Protocol):
    """A ``faster_whisper.WhisperModel``."""

    @property
    def feature_extractor(self) -> Callable[[Audio], npt.NDArray[np.float32]]: ...

    @property
    def model(self) -> Decoder: ...

    @property
    def hf_tokenizer(self) -> object: ...

    def transcribe(
        self,
        audio: Audio,
        *,
        language: str | None,
        beam_size: int,
        condition_on_previous_text: bool,
        vad_filter: bool,
        prefix: str | None,
        initial_prompt: str | None = None,
        word_timestamps: bool = False,
    ) -> tuple[Iterable[Segment], object]: ...

    def detect_language(self, audio: Audio) -> tuple[str, float, Sequence[tuple[str, float]]]: ...


class Tokenizer(Protocol):
    """A ``faster_whisper.tokenizer.Tokenizer`` for transcription."""

    @property
    def sot_prev(self) -> int: ...

    @property
    def sot_sequence(self) -> Sequence[int]: ...

    @property
    def no_timestamps(self) -> int: ...

    @property
    def eot(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, tokens: list[int]) -> str: ...
