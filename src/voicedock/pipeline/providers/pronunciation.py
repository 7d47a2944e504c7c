"""A voice's pronunciation dictionary applied to the text it is sent: the one place words are
rewritten before synthesis.

Each rule's ``grapheme`` is matched as a whole word (or phrase), case-insensitively, longest
first, in one pass (a replacement is never matched again). How a match is said depends on
what the voice takes (``PhonemeStyle``):

* ``"alias"`` (OpenAI, espeak-ng, and ElevenLabs models without phoneme tags): the rule's
  ``alias``; a rule with phonemes only leaves the word as written;
* ``"piper"``: a rule's IPA ``phoneme`` as Piper's raw phoneme input ``[[ ... ]]`` (Piper
  speaks espeak-ng's IPA), else its alias;
* ``"ssml"`` (ElevenLabs' English v2 models): ``<phoneme alphabet="ipa" ph="...">word</phoneme>``,
  else its alias.

The transcript keeps the text as written: only what the voice is sent changes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from voicedock.domain.vocabulary import Pronunciation

PhonemeStyle = Literal["alias", "piper", "ssml"]


class Pronouncer:
    """The rules of one voice, compiled once; ``spoken(text)`` is what the voice is sent."""

    def __init__(self, rules: Sequence[Pronunciation] | None, style: PhonemeStyle) -> None:
        self._style = style
        # A word (casefolded) → what is said instead, and whether it wraps the word (SSML).
        self._said: dict[str, tuple[str, bool]] = {}
        for rule in rules or ():
            key = rule.grapheme.strip().casefold()
            said = self._saying(rule)
            if said is not None and key not in self._said:  # the first rule for a word wins
                self._said[key] = said
        words = sorted(self._said, key=len, reverse=True)
        alternatives = "|".join(re.escape(word) for word in words)
        self._pattern = (
            re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE) if words else None
        )
        digest = hashlib.sha256(repr(sorted(self._said.items())).encode()).hexdigest()[:16]
        self.identity = digest if words else ""  # what the audio depends on (the cache's key)

    def _saying(self, rule: Pronunciation) -> tuple[str, bool] | None:
        if rule.phoneme is not None and self._style == "piper":
            return f"[[ {rule.phoneme} ]]", False
        if rule.phoneme is not None and self._style == "ssml":
            return f'<phoneme alphabet="ipa" ph={quoteattr(rule.phoneme)}>', True
        return None if rule.alias is None else (rule.alias, False)

    def spoken(self, text: str) -> str:
        """``text`` as the voice is sent it."""
        if self._pattern is None:
            return text

        def said(found: re.Match[str]) -> str:
            saying = self._said.get(found[0].casefold())
            if saying is None:  # matched without case, not the same casefolded: as written
                return found[0]
            replacement, wraps = saying
            return f"{replacement}{escape(found[0])}</phoneme>" if wraps else replacement

        return self._pattern.sub(said, text)
