"""Redaction: what a caller or an assistant said, with the plan's categories replaced by
placeholders (``[card_number]``, ``[email]``, a custom pattern's ``[name]``).

A ``Redactor`` is built once per call from the assistant's ``redaction_plan``
(``domain/assistant_config.py`` ``RedactionPlan``): the built-in categories' detectors
(``detectors.py``) and the organization's own patterns, compiled by RE2
(``domain/tenant_regex.py``). It reads the text with its spoken forms written out
(``spoken.py``: "four one one one", "at gmail dot com") and replaces the original words each
match stands for; matches that overlap become one placeholder (the first's category).

A card number may be said over several messages of one speaker ("4111 1111" … "1111 1111"):
``goes_on`` tells a message that ends with digits a card number may go on from, and ``across``
reads a speaker's consecutive messages as one text (the same card rule, Luhn checked), each
part of a card number that spans them replaced by the placeholder in its own message.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from voicedock.domain.redaction.detectors import (
    CARD_DIGITS,
    CATEGORIES,
    DETECTORS,
    phone_numbers_in,
)
from voicedock.domain.redaction.digit_runs import DIGIT_RUN
from voicedock.domain.redaction.spoken import written
from voicedock.domain.tenant_regex import TenantRegex

__all__ = ["CATEGORIES", "Redaction", "Redactor"]

PHONE_NUMBER = "phone_number"
CARD_NUMBER = "card_number"
# Digits at a message's end, then at most a sign a recognizer ends a sentence with.
_TRAILING_DIGITS = re.compile(r"(\d+(?:(?:[ \-]|[,.] ?)\d+)*) ?[.,;!?]?\s*$")
_SENTENCE_END = ".,;!? \t\n"
# The fewest digits of a run read as a part of a card number said across messages.
_PART_DIGITS = 4
DEFAULT_REGION = "US"
# The longest text one redaction reads (a transcript message is far shorter; past this the
# rest of the text is replaced whole, never let through unread).
TEXT_MAX = 20_000
_TRUNCATED = "[redacted]"
_PLACEHOLDER = re.compile(r"\[([a-z][a-z0-9_]{0,39})\]")


def _digits_of(text: str) -> list[str]:
    return [c for c in text if c.isdigit()]


def _a_card_may_begin(digits: str) -> bool:
    """Card numbers begin with 3 to 6 (American Express, Visa, Mastercard, Discover, JCB,
    UnionPay, ...) or with 22 to 27 (Mastercard's 2-series); years (19.., 20..) do not."""
    return digits[0] in "3456" or "22" <= digits[:2] <= "27"


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
        return self._found(text, self._finders)

    def goes_on(self, text: str) -> bool:
        """Whether a card number may go on from ``text`` (a speaker's held messages and its
        newest, a space apart) into the speaker's next message: the plan redacts card numbers
        and ``text`` ends with a run of digits a card number may begin with, shorter than one
        (at least a group of four, beginning as the card networks' numbers do: 2 to 6, so that
        a year, a price or an age said last is not held back)."""
        if not any(name == CARD_NUMBER for name, _ in self._finders):
            return False
        end = _TRAILING_DIGITS.search(written(text[-200:]).text)
        if end is None:
            return False
        digits = "".join(_digits_of(end.group(1)))
        return _PART_DIGITS <= len(digits) < CARD_DIGITS[1] and _a_card_may_begin(digits)

    def across(self, texts: Sequence[str]) -> tuple[list[str], list[str]]:
        """``texts`` (consecutive messages of one speaker, each redacted already) with every
        card number said across two or more of them replaced, in each, by the placeholder
        over its part; the messages are read as one text, a space apart (the sign that ends
        a message's sentence left out). Also the digits of each card number found."""
        cards = tuple((n, f) for n, f in self._finders if n == CARD_NUMBER)
        pieces = [t.rstrip(_SENTENCE_END) for t in texts[:-1]] + list(texts[-1:])
        starts, position = [], 0
        for piece in pieces:
            starts.append(position)
            position += len(piece) + 1
        spans: list[list[Redaction]] = [[] for _ in texts]
        joined = " ".join(pieces)
        found = self._found(joined, cards)
        for match in found:
            for index, start in enumerate(starts):
                first = max(match.start, start) - start
                last = min(match.end, start + len(pieces[index])) - start
                if first < last:
                    spans[index].append(Redaction(first, last, match.name))
        replaced = [_replaced(text, parts) for text, parts in zip(texts, spans, strict=True)]
        digits = ["".join(_digits_of(written(joined[m.start : m.end]).text)) for m in found]
        return replaced, digits

    def without_parts(self, text: str, cards: Sequence[str]) -> str:
        """``text`` with each run of digits (4 at least) that is part of one of ``cards`` (the
        digits of card numbers said across messages) replaced by the card placeholder: the
        part said first, repeated back before the rest was said."""
        if not cards:
            return text
        spoken = written(text[:TEXT_MAX])
        parts: list[Redaction] = []
        for run in DIGIT_RUN.finditer(spoken.text):
            digits = "".join(_digits_of(run.group()))
            if len(digits) >= _PART_DIGITS and any(digits in card for card in cards):
                first, last = spoken.original(*run.span())
                parts.append(Redaction(first, last, CARD_NUMBER))
        return _replaced(text, parts)

    def _found(
        self, text: str, finders: Sequence[tuple[str, Callable[[str], Iterator[tuple[int, int]]]]]
    ) -> list[Redaction]:
        text = text[:TEXT_MAX]
        spoken = written(text)
        found: list[Redaction] = []
        for name, finder in finders:
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
        return _replaced(text, self.find(text))


def _replaced(text: str, matches: Sequence[Redaction]) -> str:
    """``text`` with ``matches`` (in order, none overlapping) replaced by their placeholders."""
    if not matches and len(text) <= TEXT_MAX:
        return text
    out: list[str] = []
    position = 0
    for match in matches:
        out.append(text[position : match.start])
        out.append(f"[{match.name}]")
        position = match.end
    out.append(text[position:TEXT_MAX])
    if len(text) > TEXT_MAX:
        out.append(_TRUNCATED)
    return "".join(out)
