"""The caller's language, turn by turn: what the recognizer detected in a turn switches the
call's language only when it is one the assistant speaks (``languages``, or its own) and the
recognizer is confident of it, over enough words; a one-word "okay" never flips it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from voicedock.pipeline.providers.base import (
    DetectedLanguage,
    LanguageDetectingStt,
    ProviderError,
    Tts,
)

log = logging.getLogger(__name__)

# How sure the recognizer must be (its probability of the language, 0-1), and over how many
# words, before the call follows the caller into another language.
SWITCH_PROBABILITY = 0.8
SWITCH_WORDS = 3


@dataclass(slots=True)
class CallerLanguage:
    """The language the call is in: the assistant's own (``default``) until the caller is
    heard, confidently, in another of ``spoken``."""

    default: str
    spoken: frozenset[str]
    current: str = ""

    def __post_init__(self) -> None:
        self.current = self.current or self.default

    def heard(self, detected: DetectedLanguage | None, words: int) -> str:
        """The call's language after a turn of ``words`` words in which the recognizer
        detected ``detected`` (None: it reports no language)."""
        if (
            detected is not None
            and detected.probability >= SWITCH_PROBABILITY
            and words >= SWITCH_WORDS
            and (detected.language in self.spoken or detected.language == self.default)
        ):
            self.current = detected.language
        return self.current


# The names the model is asked to answer in ("Answer in German."), by BCP 47 primary tag; a
# language not named here is asked for by its tag.
LANGUAGE_NAMES = {
    "ar": "Arabic",
    "cs": "Czech",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "fi": "Finnish",
    "fr": "French",
    "hi": "Hindi",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "nl": "Dutch",
    "no": "Norwegian",
    "pl": "Polish",
    "pt": "Portuguese",
    "ru": "Russian",
    "sv": "Swedish",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "zh": "Chinese",
}


def answer_in(language: str) -> str:
    """The line that asks the model to answer in ``language`` (a BCP 47 primary tag)."""
    name = LANGUAGE_NAMES.get(language)
    return f"Answer in {name}." if name else f"Answer in the language of BCP 47 tag {language}."


@dataclass(frozen=True, slots=True)
class SpokenLanguage:
    """A language the assistant answers in: its tag, the line its replies are asked with
    (its prompt line, or ``answer_in``), its voice (None: the assistant's own) and the first
    message of a call that opens in it (None: the assistant's own)."""

    language: str
    instruction: str
    voice: Tts | None = None
    first_message: str | None = None


# How a call runs its recognizer's detection: in a thread of its own (``detect_in_thread``), or
# in the node's recognition pool (``NodeRecognition.detect_language``).
DetectLanguage = Callable[
    [LanguageDetectingStt, bytes, int, frozenset[str]], Awaitable[DetectedLanguage | None]
]


async def detect_in_thread(
    detector: LanguageDetectingStt, pcm: bytes, sample_rate: int, among: frozenset[str]
) -> DetectedLanguage | None:
    return await asyncio.to_thread(detector.detect_language_blocking, pcm, sample_rate, among)


class CallLanguages:
    """A call's languages: each caller turn's audio is told to ``detector`` (among the
    assistant's own language and ``spoken``), and the call follows the caller
    (``CallerLanguage``); without a detector (a recognizer that tells no language) the call
    stays in the language it opened in."""

    def __init__(
        self,
        default: str,
        spoken: Sequence[SpokenLanguage],
        detector: LanguageDetectingStt | None,
    ) -> None:
        self._spoken = {entry.language: entry for entry in spoken}
        self.caller = CallerLanguage(default, frozenset(self._spoken))
        self._among = frozenset(self._spoken) | {default}
        self._detector = detector
        self._detect: DetectLanguage = detect_in_thread

    def detected_by(self, detect: DetectLanguage) -> None:
        """Run the detection through ``detect`` (the node's recognition pool, where the call's
        transcriptions run: ``calls/runner/node_speech.py``)."""
        self._detect = detect

    @property
    def current(self) -> str:
        return self.caller.current

    def open_in(self, language: str | None) -> SpokenLanguage | None:
        """Open the call in ``language`` (the caller's number or the dialled number said it),
        when it is one of ``spoken``: what the call then answers with (None: it stays in the
        assistant's own)."""
        opening = None if language is None else self._spoken.get(language)
        if opening is not None:
            self.caller.current = opening.language
        return opening

    def voices(self) -> list[Tts]:
        """The languages' own voices (their owner closes them)."""
        return [entry.voice for entry in self._spoken.values() if entry.voice is not None]

    def spoken(self, language: str) -> SpokenLanguage | None:
        """What the call answers ``language`` with (None: the assistant's own ways)."""
        return self._spoken.get(language)

    async def heard(self, pcm: bytes, sample_rate: int, words: int) -> str:
        """The call's language after a caller turn of ``words`` words heard as ``pcm``; a
        detection that fails leaves it as it was."""
        if words < SWITCH_WORDS or self._detector is None:
            return self.caller.current
        try:
            detected = await self._detect(self._detector, pcm, sample_rate, self._among)
        except ProviderError as exc:
            log.debug("caller's language not detected: %s", type(exc).__name__)
            detected = None
        return self.caller.heard(detected, words)
