"""What each redaction category finds in a (written) text: the spans of card numbers, IBANs,
e-mail addresses, phone numbers, dates of birth, national identifiers (``national_ids.py``) and
postal addresses (``addresses.py``).

Each detector reads the text ``spoken.written`` made (spoken digits and address signs written
out) and answers ``[start, end)`` spans of it. Their own patterns are fixed and written so that
no input makes them backtrack badly; an organization's patterns never run here
(``domain/tenant_regex.py`` runs them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import get_args

import phonenumbers

from voicedock.domain.assistant_config import RedactionCategory
from voicedock.domain.redaction.addresses import postal_addresses
from voicedock.domain.redaction.digit_runs import digit_windows
from voicedock.domain.redaction.national_ids import national_ids

__all__ = ["CARD_DIGITS", "DETECTORS", "iban_valid", "luhn_valid"]

Span = tuple[int, int]

CARD_DIGITS = (13, 19)  # the fewest and most digits of a card number


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of ``digits`` holds."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def card_numbers(text: str) -> Iterator[Span]:
    """Luhn-checked runs of 13-19 digits; in a longer run (a card number said with what
    follows it), the longest such window of its groups, leftmost first."""
    return digit_windows(text, CARD_DIGITS, luhn_valid)


# An IBAN's length by country (ISO 13616 registry), for the countries that use one most.
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27,
    "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
# A country code and check digits, then letters and digits, a space apart or not.
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])[A-Za-z] ?[A-Za-z] ?\d ?\d")
_IBAN_CHAR = re.compile(r" ?([A-Za-z0-9])")


def iban_valid(iban: str) -> bool:
    """``iban`` (no spaces) has its country's length and a valid ISO 7064 check (mod 97)."""
    iban = iban.upper()
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def ibans(text: str) -> Iterator[Span]:
    """IBANs of a known country's length whose check digits hold."""
    position = 0
    while (start := _IBAN_START.search(text, position)) is not None:
        compact = "".join(c for c in start.group() if c != " ")
        length = _IBAN_LENGTHS.get(compact[:2].upper())
        end = start.end()
        while length is not None and len(compact) < length:
            char = _IBAN_CHAR.match(text, end)
            if char is None:
                break
            compact, end = compact + char.group(1), char.end()
        if length is not None and len(compact) == length and iban_valid(compact):
            yield start.start(), end
            position = end
        else:
            position = start.start() + 1


_EMAIL = re.compile(
    r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63}){0,8}\.[A-Za-z]{2,24}"
    r"(?![A-Za-z0-9\-])"
)


# A recognizer may run the spoken "at" into its neighbours: "jane.doatexample.com". Read so
# with a common top-level domain only (a website's name with "at" in it may be taken too).
_FUSED_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-@])[A-Za-z0-9._%+\-]{1,64}at[A-Za-z0-9\-]{1,63}"
    r"(?:\.[A-Za-z0-9\-]{1,63}){0,4}\.(?:com|org|net|edu|gov|info|biz|io|co|uk|us|ca|au|de|fr"
    r"|nl|be|es|it|eu|ch|at)(?![A-Za-z0-9\-])",
    re.IGNORECASE,
)


def emails(text: str) -> Iterator[Span]:
    """Addresses, and addresses whose spoken "at" the recognizer ran into the words."""
    for match in _EMAIL.finditer(text):
        yield match.span()
    for match in _FUSED_EMAIL.finditer(text):
        yield match.span()


def phone_numbers_in(region: str) -> Callable[[str], Iterator[Span]]:
    """Phone numbers libphonenumber's matcher finds (valid ones; a national number read as
    ``region``'s)."""

    def phone_numbers(text: str) -> Iterator[Span]:
        for match in phonenumbers.PhoneNumberMatcher(text, region):
            yield match.start, match.end

    return phone_numbers


_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december"
    "|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec"
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?"
_YEAR = r"(?:1[89]|20) ?\d\d"  # 1985, or spoken: "19 85"
_NUMERIC_YEAR = r"(?:\d{4}|\d\d)"
_DATES = re.compile(
    "|".join(
        (
            # 04/07/1985, 4.7.85, 07-04-1985
            rf"(?<!\d)(?:0?[1-9]|[12]\d|3[01])([./-])(?:0?[1-9]|1[0-2])\1{_NUMERIC_YEAR}(?!\d)",
            rf"(?<!\d)(?:0?[1-9]|1[0-2])([./-])(?:0?[1-9]|[12]\d|3[01])\2{_NUMERIC_YEAR}(?!\d)",
            # 1985-07-04
            r"(?<!\d)(?:1[89]|20)\d\d-(?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12]\d|3[01])(?!\d)",
            # (the) 4(th) (of) July(,) 1985
            rf"(?<![\w])(?:the )?{_DAY} (?:of )?(?:{_MONTHS})\.?,? (?:of )?{_YEAR}(?!\d)",
            # July 4(th)(,) 1985; July the 4th 1985
            rf"(?<![\w])(?:{_MONTHS})\.? (?:the )?{_DAY},? (?:of )?{_YEAR}(?!\d)",
        )
    ),
    re.IGNORECASE,
)


def dates_of_birth(text: str) -> Iterator[Span]:
    """Whole dates (day, month and year), written or spoken: a date of birth is one; a day
    without its year is left."""
    for match in _DATES.finditer(text):
        yield match.span()


# The built-in categories and what finds each (the phone numbers' needs a region).
CATEGORIES: tuple[str, ...] = get_args(RedactionCategory)  # in their priority order
DETECTORS: dict[str, Callable[[str], Iterator[Span]]] = {
    "card_number": card_numbers,
    "iban": ibans,
    "email": emails,
    "date_of_birth": dates_of_birth,
    "national_id": national_ids,
    "postal_address": postal_addresses,
}
