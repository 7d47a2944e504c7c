"""The caller's language, turn by turn: what the recognizer detected in a turn switches the
call's language only when it is one the assistant speaks (``languages``, or its own) and the
recognizer is confident of it, over enough words; a one-word "okay" never flips it."""

from __future__ import annotations

from dataclasses import dataclass

from voicedock.pipeline.providers.base import DetectedLanguage

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
