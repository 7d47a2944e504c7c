"""A transcript's spoken forms written out, each character of the result mapped back to the
text it came from.

A recognizer writes what it hears: "four one one one", "john at gmail dot com", "the fourth of
July nineteen eighty-five". ``written`` turns such words into what the detectors read
("4 1 1 1", "john@gmail.com", "the 4 of July 1985") and keeps, for each character it writes,
the span of the original text it stands for, so a match in the written text is redacted in the
original (``Written.original``). Text already written ("4111 1111", "j@x.com") stays as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["TEEN_WORDS", "TENS_WORDS", "UNIT_WORDS", "Written", "written"]

UNIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEEN_WORDS = (
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
TENS_WORDS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_ORDINAL_UNITS = (
    "zeroth",
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
)
_ORDINAL_TEENS = tuple("twelfth" if t == "twelve" else f"{t}th" for t in TEEN_WORDS)
_ORDINAL_TENS = tuple(f"{t[:-1]}ieth" for t in TENS_WORDS)

# A spoken number word: its value, whether it is a unit (0-9, joins a tens word before it).
_NUMBERS: dict[str, tuple[int, bool]] = {
    **{w: (i, True) for i, w in enumerate(UNIT_WORDS)},
    "oh": (0, True),
    **{w: (i, True) for i, w in enumerate(_ORDINAL_UNITS)},
    **{w: (10 + i, False) for i, w in enumerate(TEEN_WORDS)},
    **{w: (10 + i, False) for i, w in enumerate(_ORDINAL_TEENS)},
    **{w: (20 + 10 * i, False) for i, w in enumerate(TENS_WORDS)},
    **{w: (20 + 10 * i, False) for i, w in enumerate(_ORDINAL_TENS)},
}
# Words a recognizer writes for the signs of an address, joined to their neighbours.
_SIGNS = {"at": "@", "dot": "."}
_THOUSAND = "thousand"
_PAUSES = (",", "-")
# A word, a number (with an ordinal's suffix), or any other sign.
_TOKEN = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*|\d+(?:st|nd|rd|th)?|\S")


@dataclass(frozen=True, slots=True)
class _Piece:
    text: str  # as written for the detectors
    start: int  # the original text's span it stands for
    end: int
    number: bool = False  # a spoken number
    sign: bool = False  # a spoken "@" or "."


@dataclass(frozen=True, slots=True)
class Written:
    """The written text and, per character, the original span it stands for."""

    text: str
    _starts: tuple[int, ...]
    _ends: tuple[int, ...]

    def original(self, start: int, end: int) -> tuple[int, int]:
        """The original span of the written text's ``[start, end)`` (``end > start``)."""
        return self._starts[start], self._ends[end - 1]


def written(text: str) -> Written:
    """``text`` with its spoken numbers and address signs written out."""
    pieces = _numbers_joined(_signs([_piece(m) for m in _TOKEN.finditer(text)]))
    pieces = _separators_dropped(pieces)
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    previous: _Piece | None = None
    for piece in pieces:
        if previous is not None:
            gap = text[previous.end : piece.start]
            if previous.sign or piece.sign:
                gap = ""  # "john at gmail dot com": john@gmail.com
            elif (previous.number or piece.number) and gap.strip(" ,-") == "":
                gap = " "  # "four, one, one": "4 1 1"
            for index, char in enumerate(gap):
                out.append(char)
                at = previous.end + min(index, len(text[previous.end : piece.start]) - 1)
                starts.append(at)
                ends.append(at + 1)
        for char in piece.text:
            out.append(char)
            starts.append(piece.start)
            ends.append(piece.end)
        previous = piece
    return Written("".join(out), tuple(starts), tuple(ends))


def _piece(match: re.Match[str]) -> _Piece:
    word, start, end = match.group(), match.start(), match.end()
    lowered = word.lower()
    if lowered in _SIGNS:
        return _Piece(_SIGNS[lowered], start, end, sign=True)
    parts = lowered.split("-")
    if all(p in _NUMBERS for p in parts) and len(parts) <= 2:
        values = [_NUMBERS[p] for p in parts]
        if len(values) == 1:
            return _Piece(str(values[0][0]), start, end, number=True)
        (tens, tens_unit), (unit, is_unit) = values
        if not tens_unit and tens % 10 == 0 and tens >= 20 and is_unit:  # "eighty-five"
            return _Piece(str(tens + unit), start, end, number=True)
    if lowered == _THOUSAND:
        return _Piece(_THOUSAND, start, end)
    return _Piece(word, start, end)


def _separators_dropped(pieces: list[_Piece]) -> list[_Piece]:
    """A comma or dash between spoken numbers ("four one, one one") is a pause, not a sign."""
    return [
        piece
        for index, piece in enumerate(pieces)
        if not (
            piece.text in _PAUSES
            and 0 < index < len(pieces) - 1
            and pieces[index - 1].number
            and pieces[index + 1].number
        )
    ]


def _signs(pieces: list[_Piece]) -> list[_Piece]:
    """An "at" another "at" follows closely is a word ("email me at jane dot doe at ...")."""
    out = list(pieces)
    for index, piece in enumerate(pieces):
        if piece.text == "@" and any(p.text == "@" for p in pieces[index + 1 : index + 5]):
            out[index] = _Piece("at", piece.start, piece.end)
    return out


def _numbers_joined(pieces: list[_Piece]) -> list[_Piece]:
    """Spoken numbers that make one: "eighty five" (85), "two thousand and three" (2003)."""
    out: list[_Piece] = []
    index = 0
    while index < len(pieces):
        piece = pieces[index]
        nxt = pieces[index + 1] if index + 1 < len(pieces) else None
        if piece.number and nxt is not None and nxt.number and _tens(piece) and _unit(nxt):
            out.append(_Piece(str(int(piece.text) + int(nxt.text)), piece.start, nxt.end, True))
            index += 2
            continue
        if piece.number and nxt is not None and nxt.text == _THOUSAND and int(piece.text) < 10:
            value, end, index = int(piece.text) * 1000, nxt.end, index + 2
            rest = pieces[index:]
            skip = 1 if rest and rest[0].text.lower() == "and" else 0
            if len(rest) > skip and rest[skip].number:
                tail = rest[skip]
                value, end, index = value + int(tail.text), tail.end, index + skip + 1
                if _tens(tail) and index < len(pieces) and _unit(pieces[index]):
                    value, end = value + int(pieces[index].text), pieces[index].end
                    index += 1
            out.append(_Piece(str(value), piece.start, end, True))
            continue
        out.append(piece)
        index += 1
    return out


def _tens(piece: _Piece) -> bool:
    return piece.number and len(piece.text) == 2 and piece.text.endswith("0") and piece.text >= "20"


def _unit(piece: _Piece) -> bool:
    return piece.number and len(piece.text) == 1 and piece.text != "0"
