"""Entries of a do-not-call list: numbers and ranges, and the CSV a list is imported from.

An entry is either

* a number: E.164 (``+31612345678``) that can exist (libphonenumber's numbering plans,
  ``number_plan.classify``): that number only; or
* a range: ``+`` and digits, then ``*`` (``+1900*``): every number that starts with those
  digits. The digits begin with a country calling code (``+1``, ``+31``, ``+800``) and are at
  most 15, as a number's.

A number is listed when the list holds the number itself or a range it starts with
(``covering``): so ``+1900*`` lists ``+19005550100`` but not ``+1212…``, and ``+31612345678``
lists that number only. Pure functions: the store keeps entries as these strings.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import phonenumbers

from voicedock.domain.number_plan import classify

RANGE_MARK = "*"
MAX_DIGITS = 15
MAX_ENTRY_LENGTH = 1 + MAX_DIGITS + len(RANGE_MARK)
# A header row's first cell (case-insensitive) in an imported CSV: not an entry.
CSV_HEADER = "number"

_RANGE = re.compile(r"\+([0-9]{1,15})\*")


class EntryRefused(ValueError):
    """Not a do-not-call entry; the message says why (safe to show the client)."""


def entry_of(text: str) -> str:
    """``text`` as a do-not-call entry (surrounding blanks removed); ``EntryRefused`` when it
    is neither a number that can exist nor a range of a country calling code."""
    value = text.strip()
    if len(value) > MAX_ENTRY_LENGTH:
        raise EntryRefused(f"an entry is at most {MAX_ENTRY_LENGTH} characters")
    match = _RANGE.fullmatch(value)
    if match is not None:
        digits = match.group(1)
        if not any(
            digits.startswith(str(code)) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE
        ):
            raise EntryRefused("a range must begin with a country calling code (+1900*)")
        return value
    if not value.startswith("+") or not value[1:].isascii() or not value[1:].isdigit():
        raise EntryRefused("an entry is an E.164 number (+31612345678) or a range (+1900*)")
    if classify(value) is None:
        raise EntryRefused(
            "not a valid phone number (wrong length for its country, or a range that is not in use)"
        )
    return value


def is_range(entry: str) -> bool:
    return entry.endswith(RANGE_MARK)


def covering(number: str) -> tuple[str, ...]:
    """The entries that list ``number`` (E.164): the number itself and each range it starts
    with (``+1*``, ``+19*``, ..., its own digits and ``*``)."""
    digits = number[1:]
    return (number, *(f"+{digits[:n]}{RANGE_MARK}" for n in range(1, len(digits) + 1)))


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A CSV row that is no entry: its 1-based row number and why (the value is not kept:
    it may be a full phone number, and the client has its own file)."""

    row: int
    message: str


@dataclass(frozen=True, slots=True)
class CsvEntries:
    """What an imported CSV holds: its entries (each once, in order) and the rows refused."""

    entries: list[str]
    rejected: list[RejectedRow]


class CsvTooLarge(ValueError):
    """The CSV has more rows than one import takes."""


class CsvUnreadable(ValueError):
    """The csv module cannot read the CSV (a value over its field limit): the line named."""


def csv_entries(text: str, max_rows: int) -> CsvEntries:
    """The entries of a CSV: one a row, in its first column (other columns, a note, are
    ignored; a first row whose first cell is ``number`` is a header; blank rows are skipped).
    ``CsvTooLarge`` past ``max_rows`` rows. Its lines may end in CR, LF or both;
    ``CsvUnreadable`` for what the csv module cannot read."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return _entries(reader, max_rows)
    except csv.Error as exc:
        raise CsvUnreadable(f"CSV line {reader.line_num}: {exc}") from None


def _entries(reader: Iterator[list[str]], max_rows: int) -> CsvEntries:
    entries: dict[str, None] = {}
    rejected: list[RejectedRow] = []
    for index, row in enumerate(reader, start=1):
        if index > max_rows:
            raise CsvTooLarge(f"a CSV holds at most {max_rows} rows")
        cell = row[0].strip() if row else ""
        if not cell or (index == 1 and cell.lower() == CSV_HEADER):
            continue
        try:
            entries[entry_of(cell)] = None
        except EntryRefused as refused:
            rejected.append(RejectedRow(index, str(refused)))
    return CsvEntries(list(entries), rejected)


__all__ = [
    "CSV_HEADER",
    "MAX_ENTRY_LENGTH",
    "RANGE_MARK",
    "CsvEntries",
    "CsvTooLarge",
    "CsvUnreadable",
    "EntryRefused",
    "RejectedRow",
    "covering",
    "csv_entries",
    "entry_of",
    "is_range",
]
