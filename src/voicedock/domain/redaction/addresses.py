"""Postal addresses: a street with its house number, and postcodes, written or spoken (the
digits written out by ``spoken.py``), in the forms of the Netherlands, Germany, the United
Kingdom and the United States (and the many countries that write them alike).

What is found (docs/privacy.md says it to organizations):

- a house number, then one to three capitalized words ending in a street word ("221B Baker
  Street", "1600 Pennsylvania Avenue NW", "12 St Mary's Road"), with the unit after it
  ("Apt 4B", "Suite 200") and the town, state and ZIP code or postcode that follow it;
- a street word ending in or followed by its number ("Keizersgracht 123", "Hauptstraße 5a",
  "Berliner Straße 12"), with the postcode and town that follow it ("1015 CJ Amsterdam",
  "10115 Berlin");
- a postcode on its own where its shape is distinctive: a UK postcode ("SW1A 2AA", "S W 1 A
  2 A A"), a Dutch one ("1015 CJ", its letters in capitals), a US ZIP code after a state's
  abbreviation ("IL 62704") or after "zip code";
- a PO box ("P.O. Box 123").

A street named without a street word ("Unter den Linden 77"), a German postcode without the
street before it and a town on its own are not found. Every pattern is bounded (a few words),
anchored at a word's start, so reading a text is linear in its length.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["postal_addresses"]

Span = tuple[int, int]

# A word starts after none of a word's characters: one word is one start, however long.
_START = r"(?<![\w'’.\-])"
_CAPITAL = r"[A-ZÀ-ÖØ-Þ]"
_WORD = r"[\w'’.\-]*"
_NAME = rf"(?:{_CAPITAL}{_WORD}|\d{{1,3}}(?:st|nd|rd|th)?)"  # "Baker", "5th", spoken "fifth"
_HOUSE_NUMBER = r"\d{1,5}(?: \d){0,4}(?: ?[A-Za-z](?![\w']))?"  # "221B", "2 2 1 B"
_EN_STREET = (
    "street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|terrace"
    "|way|close|crescent|square|sq|parkway|pkwy|highway|hwy|circle|cir|gardens|grove|row|mews"
    "|hill|walk|green|alley|plaza|trail|broadway"
)
_DIRECTION = r"(?: (?:N|S|E|W|NE|NW|SE|SW)\b\.?)?"
_UNIT = r"(?:,? (?i:apt|apartment|suite|ste|unit|flat|floor|fl|#)\.? ?#?[A-Za-z0-9]{1,5}\b)?"
_US_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV"
    "|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR"
)
_ZIP = r"\d(?: ?\d){4}(?:-\d{4})?"
_US_ZIP = rf"(?:{_US_STATES}),? {_ZIP}"
_GB_POSTCODE = r"[A-Z] ?(?:[A-Z] ?)?\d ?(?:[A-Z\d] ?)?\d ?[A-Z] ?[A-Z]"
_NL_POSTCODE = r"[1-9](?: ?\d){3} ?(?!SA|SD|SS)[A-Z] ?[A-Z]"
_DE_POSTCODE = r"\d(?: ?\d){4}"
_TOWN_WORD = rf"{_CAPITAL}[\w'’\-]*"
_TOWN = rf"{_TOWN_WORD}(?: {_TOWN_WORD}){{0,2}}"

# "221B Baker Street, Apt 4, London NW1 6XE"; "1600 Pennsylvania Avenue NW, Washington, DC
# 20500".
_NUMBER_FIRST = re.compile(
    rf"{_START}(?:{_HOUSE_NUMBER}),? (?:{_NAME} ){{1,3}}(?i:{_EN_STREET})\.?(?![\w]){_DIRECTION}"
    rf"{_UNIT}(?:,? (?:{_TOWN},? )?(?:{_US_ZIP}|{_GB_POSTCODE})(?![\w]))?"
)
_NL_DE_STREET = (
    "straat|laan|weg|gracht|plein|kade|singel|dijk|steeg|markt|pad|hof|dreef|straße|strasse"
    "|str\\.|allee|platz|gasse|ring|damm|ufer|chaussee|pfad"
)
# "Keizersgracht 123-2, 1015 CJ Amsterdam"; "Berliner Straße 12a, 10115 Berlin".
_NUMBER_AFTER = r"\d{1,4}(?: \d){0,3}(?:[ -]?[A-Za-z](?![\w]))?(?:[-/]\d{1,4})?"  # "123-2"
_NUMBER_LAST = re.compile(
    rf"{_START}(?:{_CAPITAL}{_WORD} ){{0,2}}(?:{_CAPITAL}[\w'’\-]*?)?(?i:{_NL_DE_STREET}) "
    # the postcode's digits may follow the number's spoken ones without a pause
    rf"(?:{_NUMBER_AFTER},? (?:{_NL_POSTCODE}|{_DE_POSTCODE})(?![\w])(?: {_TOWN})?"
    rf"|{_NUMBER_AFTER})"
)
_POSTCODES = re.compile(
    rf"(?<![\w])(?:{_GB_POSTCODE}|{_NL_POSTCODE}|{_US_ZIP})(?![\w])"
    rf"|(?<![\w])(?i:zip(?: ?code)?(?: is)?:?) ({_ZIP})(?![\w])"
)
_PO_BOX = re.compile(r"(?<![\w])(?i:p\.? ?o\.? box|post office box|postbus) \d{1,6}(?![\w])")


def postal_addresses(text: str) -> Iterator[Span]:
    """Streets with their numbers, postcodes and PO boxes in ``text``."""
    for pattern in (_NUMBER_FIRST, _NUMBER_LAST, _PO_BOX):
        for match in pattern.finditer(text):
            yield match.span()
    for match in _POSTCODES.finditer(text):
        yield match.span(1) if match.group(1) is not None else match.span()
