"""Redaction: what a caller or an assistant said, with the plan's categories replaced by
placeholders (``[card_number]``, ``[email]``, a custom pattern's ``[name]``).

A ``Redactor`` is built once per call from the assistant's ``redaction_plan``
(``domain/assistant_config.py`` ``RedactionPlan``): the built-in categories' detectors
(``detectors.py``) and the organization's own patterns, compiled by RE2
(``domain/tenant_regex.py``). It reads the text with its spoken forms written out
(``spoken.py``: "four one one one", "at gmail dot com") and replaces the original words each
match stands for; matches that overlap become one placeholder (the first's category).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from voicedock.domain.redaction.detectors import CATEGORIES, DETECTORS, phone_numbers_in
from voicedock.domain.redaction.spoken import written
from voicedock.domain.tenant_regex import TenantRegex

__all__ = ["CATEGORIES", "Redaction", "Redactor"]

PHONE_NUMBER = "phone_number"
DEFAULT_REGION = "US"
# The longest text one redaction reads (a transcript message is far shorter; past this the
# rest of the text is replaced whole, never let through unread).
TEXT_MAX = 20_000
_TRUNCATED = "[redacted]"
_PLACEHOLDER = re.compile(r"\[([a-z][a-z0-9_]{0,39})\]")


@dataclass(frozen=True, slots=True)
class Redaction:
    """One match: the original text's ``[start, end)`` and the placeholder's name."""

    start: int
    end: int
    name: str


class Redactor:
    """Finds and replaces the plan's categories and patterns in a text."""

    def __init__(
        self,
        categories: Sequence[str],
        patterns: Sequence[tuple[str, str]] = (),
        *,
        region: str = DEFAULT_REGION,
    ) -> None:
        """``categories``: of ``CATEGORIES``; ``patterns``: (name, RE2 pattern), checked
        already (``ValueError`` for one RE2 refuses); ``region``: the country a phone number
        written without its country code is read in."""
        finders: list[tuple[str, Callable[[str], Iterator[tuple[int, int]]]]] = []
        for name in CATEGORIES:  # in their priority order
            if name in categories:
                found = phone_numbers_in(region) if name == PHONE_NUMBER else DETECTORS[name]
                finders.append((name, found))
        for name, pattern in patterns:
            finders.append((name, TenantRegex(pattern).spans))
        self._finders = tuple(finders)
        self._names = frozenset(name for name, _ in finders)

    def find(self, text: str) -> list[Redaction]:
        """The matches in ``text`` (at most ``TEXT_MAX`` characters), in order, none
        overlapping."""
        text = text[:TEXT_MAX]
        spoken = written(text)
        found: list[Redaction] = []
        for name, finder in self._finders:
            for start, end in finder(spoken.text):
                if end > start:
                    first, last = spoken.original(start, end)
                    found.append(Redaction(first, last, name))
        found.sort(key=lambda r: (r.start, -r.end))
        merged: list[Redaction] = []
        for match in found:
            if merged and match.start < merged[-1].end:
                last_one = merged[-1]
                merged[-1] = Redaction(last_one.start, max(last_one.end, match.end), last_one.name)
            else:
                merged.append(match)
        return merged

    def placeholders(self, redacted: str) -> Counter[str]:
        """How many placeholders of each of the plan's names a text it redacted holds."""
        return Counter(n for n in _PLACEHOLDER.findall(redacted) if n in self._names)

    def redact(self, text: str) -> str:
        """``text`` with each match replaced by its placeholder."""
        if not self._finders or not text:
            return text
        out: list[str] = []
        position = 0
        for match in self.find(text):
            out.append(text[position : match.start])
            out.append(f"[{match.name}]")
            position = match.end
        out.append(text[position:TEXT_MAX])
        if len(text) > TEXT_MAX:
            out.append(_TRUNCATED)
        return "".join(out)
