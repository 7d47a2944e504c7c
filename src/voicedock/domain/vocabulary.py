"""Keyterms and pronunciations: the words a recognizer listens for, and how a voice says them.

An assistant lists its keyterms in ``stt_config.keyterms`` (the clinic's name, product codes,
people's names) and its pronunciation dictionary in ``tts_config.pronunciations``; its
organization may give every one of its calls a vocabulary of its own (``Vocabulary``, on
``/organization``). A call hears and speaks with both, the assistant's entries first and
winning where both say how one word is said (``merged_keyterms``, ``merged_pronunciations``).

A pronunciation rule says a word (``grapheme``, matched as a whole word, case-insensitive) is
said as another text (``alias``: "Nguyen" said "Win") or as IPA phonemes (``phoneme`` with
``alphabet`` "ipa"); a rule may carry both, the phonemes for a voice that takes them and the
alias for the others. What a recognizer or voice does with them is the provider's
(``pipeline/providers/pronunciation.py``, docs/speech.md); the transcript keeps the text as
written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from voicedock.validation import NOT_BLANK_LINE_PATTERN

KEYTERMS_MAX = 100  # keyterms of one list
KEYTERM_MAX = 100  # characters of one keyterm
PRONUNCIATIONS_MAX = 100  # rules of one dictionary
GRAPHEME_MAX = 100  # characters of the word a rule is for
SAYING_MAX = 200  # characters of its alias or phonemes

# One line of text, not blank, no control characters (a keyterm reaches a query string and a
# prompt, a rule the text a voice is sent).
_LINE = NOT_BLANK_LINE_PATTERN

Keyterm = Annotated[str, Meta(min_length=1, max_length=KEYTERM_MAX, pattern=_LINE)]
Keyterms = Annotated[
    list[Keyterm],
    Meta(
        max_length=KEYTERMS_MAX,
        description="Words and phrases the recognizer should expect (names, product codes), "
        f"most important first: at most {KEYTERMS_MAX}, each 1-{KEYTERM_MAX} characters.",
    ),
]


# What a rule says instead of its grapheme: an alias, or phonemes.
Saying = Annotated[str, Meta(min_length=1, max_length=SAYING_MAX, pattern=_LINE)]


class Pronunciation(
    msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True, omit_defaults=True
):
    """One rule of a pronunciation dictionary: ``grapheme`` said as ``alias``, or as
    ``phoneme`` (IPA) by a voice that takes phonemes (the alias, if any, elsewhere)."""

    grapheme: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=GRAPHEME_MAX,
            pattern=_LINE,
            description="The word or phrase as written (a whole word, case-insensitive).",
        ),
    ]
    alias: (
        Annotated[Saying, Meta(description="What the voice says instead (every voice).")] | None
    ) = None
    phoneme: (
        Annotated[Saying, Meta(description="How it is said, in IPA (voices that take phonemes).")]
        | None
    ) = None
    alphabet: (
        Annotated[Literal["ipa"], Meta(description="The phonemes' alphabet (IPA if left out).")]
        | None
    ) = None

    def __post_init__(self) -> None:
        if self.alias is None and self.phoneme is None:  # stated in the schema too (_SAYS_ONE)
            raise ValueError("a pronunciation needs an alias or a phoneme")


# What __post_init__ refuses, in the schema: a rule says its word as an alias or as phonemes.
_SAYS_ONE = {
    "anyOf": [
        {"required": [name], "properties": {name: {"type": "string"}}}
        for name in ("alias", "phoneme")
    ]
}

Pronunciations = Annotated[
    list[Annotated[Pronunciation, Meta(extra_json_schema=_SAYS_ONE)]],
    Meta(
        max_length=PRONUNCIATIONS_MAX,
        description="The voice's pronunciation dictionary: "
        f"at most {PRONUNCIATIONS_MAX} rules (docs/speech.md).",
    ),
]


class Vocabulary(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """An organization's keyterms and pronunciations, for every call of its assistants (an
    assistant's own come first and win)."""

    keyterms: Keyterms = msgspec.field(default_factory=list)
    pronunciations: Pronunciations = msgspec.field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.keyterms and not self.pronunciations


def merged_keyterms(own: Sequence[str], organization: Sequence[str]) -> list[str]:
    """The assistant's keyterms, then the organization's it does not list (case-insensitive),
    at most ``KEYTERMS_MAX``."""
    seen = {term.casefold() for term in own}
    extra = [term for term in organization if term.casefold() not in seen]
    return [*own, *extra][:KEYTERMS_MAX]


def merged_pronunciations(
    own: Sequence[Pronunciation], organization: Sequence[Pronunciation]
) -> list[Pronunciation]:
    """The assistant's rules, then the organization's for words it has no rule for, at most
    ``PRONUNCIATIONS_MAX``."""
    seen = {rule.grapheme.casefold() for rule in own}
    extra = [rule for rule in organization if rule.grapheme.casefold() not in seen]
    return [*own, *extra][:PRONUNCIATIONS_MAX]


def keyterms_prompt(keyterms: Sequence[str] | None) -> str:
    """The keyterms as a recognizer's text prompt (Whisper's previous text, OpenAI's
    ``prompt``): "Acme Dental, Dr. Nguyen, SKU-204." ("" for none)."""
    terms = [term.strip() for term in keyterms or () if term.strip()]
    return f"{', '.join(terms)}." if terms else ""
