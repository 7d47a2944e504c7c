"""Barge-in on words, not noises: whether what the caller said over the assistant stops it.

With ``BargeInConfig.on_words`` the assistant's audio pauses as the caller starts (the floor
holds it: ``barge_in.py``), and the caller's transcribed words decide (``stands``): no words,
a sound voiced (pitched: ``pipeline/hearing/voicing.py``) shorter than ``min_voiced_ms`` (a
cough, a door, a keyboard, whatever the recognizer made of it), or only backchannels ("mm-hm",
"yeah", "genau"): the message goes on where it stopped; anything else is an interruption as
ever. Sounds the recognizer writes in brackets ("[coughing]", "(laughs)") are no words.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from voicedock.domain.backchannels import DEFAULT_BACKCHANNELS

# What a held message says again before the point it was stopped at, so the caller hears it
# go on from within the word it was paused in.
RESUME_OVERLAP_MS = 200

_SOUNDS = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*")
_NOT_WORD = re.compile(r"[^\w'\-]+")


def words_of(text: str) -> list[str]:
    """``text`` as lowercase words: bracketed sounds, punctuation and hyphens between
    repeated letters dropped ("Mm-hmm." and "mm hmm" read alike)."""
    plain = _SOUNDS.sub(" ", text.lower())
    return [w.strip("-'") for w in _NOT_WORD.sub(" ", plain).replace("-", " ").split() if w]


def _phrases(backchannels: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    phrases = {tuple(words_of(p)) for p in backchannels}
    return tuple(sorted((p for p in phrases if p), key=len, reverse=True))


@dataclass(frozen=True, slots=True)
class BargeInConfig:
    """How the caller's speech over the assistant is judged. ``on_words`` False: any speech
    long enough (``endpointing.barge_in_speech_ms``) interrupts at once."""

    on_words: bool = False
    backchannels: tuple[str, ...] = tuple(
        dict.fromkeys(p for phrases in DEFAULT_BACKCHANNELS.values() for p in phrases)
    )
    # Less pitched sound than this: a noise, whatever the recognizer made of it.
    min_voiced_ms: int = 60
    # The backchannels of each language (its primary tag): ``for_language`` takes a call's.
    languages: tuple[tuple[str, tuple[str, ...]], ...] = tuple(DEFAULT_BACKCHANNELS.items())

    def __post_init__(self) -> None:
        if self.min_voiced_ms < 0:
            raise ValueError("barge_in.min_voiced_ms must not be negative")

    def for_language(self, language: str | None) -> BargeInConfig:
        """This configuration for a call in ``language`` (a BCP 47 tag; None: not known):
        its language's backchannels, or every language's where it has no list of its own."""
        lists = dict(self.languages)
        primary = (language or "").split("-")[0].lower()
        if primary in lists:
            chosen = lists[primary]
        else:
            chosen = tuple(dict.fromkeys(p for phrases in lists.values() for p in phrases))
        return dataclasses.replace(self, backchannels=chosen)

    def is_backchannel(self, text: str) -> bool:
        """``text`` holds no word, or only backchannel phrases ("yeah, okay", "mm-hm")."""
        words = words_of(text)
        phrases = _phrases(self.backchannels)
        at = 0
        while at < len(words):
            match = next((p for p in phrases if tuple(words[at : at + len(p)]) == p), None)
            if match is None:
                return False
            at += len(match)
        return True

    def stands(self, text: str, voiced_ms: int) -> bool:
        """Whether the caller's ``text`` (a sound with ``voiced_ms`` of it pitched) interrupts
        the assistant."""
        return voiced_ms >= self.min_voiced_ms and not self.is_backchannel(text)
