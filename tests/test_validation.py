from __future__ import annotations

import re

import pytest

from voicedock.errors import BadRequest
from voicedock.validation import (
    NOT_BLANK_LINE_PATTERN,
    NOT_BLANK_PATTERN,
    WHITESPACE,
    is_e164,
    mask_number,
    require_e164,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("good", ["+31612345678", "+1234567", "+123456789012345"])
def test_e164_accepts_canonical_numbers(good: str) -> None:
    assert is_e164(good)
    assert require_e164(good) == good


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "31612345678",
        "+0612345678",
        "+123456",
        "+1234567890123456",
        "+31612345678&PJSIP/evil",
        "+3161234/5678",
        "+31612345678@evil",
        "+3161,2345678",
        "+31 612345678",
        "+3161234567a",
        "+31612345678\r\nAction: Originate",
        "+316123\x005678",
        "+٣١٦١٢٣٤٥٦٧٨",
        "+３１６１２３４５６７８",
        "+31612345678\n",
        None,
        31612345678,
    ],
)
def test_e164_refuses_everything_else(bad: object) -> None:
    assert not is_e164(bad)
    with pytest.raises(BadRequest) as exc:
        require_e164(bad)
    assert exc.value.status == 400
    assert set(exc.value.body()) == {"error", "message"}


def test_numbers_are_masked_for_logs() -> None:
    assert mask_number("+31612345678") == "+316***78"
    assert "12345" not in mask_number("+31612345678")
    assert mask_number(None) == "-"


def test_the_whitespace_class_is_what_strip_removes() -> None:
    """The documented schema's patterns say "not blank" with it: exactly str.isspace."""
    spaces = {chr(c) for c in range(0x110000) if chr(c).isspace()}
    matched = {chr(c) for c in range(0x110000) if re.fullmatch(f"[{WHITESPACE}]", chr(c))}
    assert matched == spaces
    assert re.search(NOT_BLANK_PATTERN, " x ")
    assert not re.search(NOT_BLANK_PATTERN, " \x1f\u3000")
    assert not re.search(NOT_BLANK_PATTERN, "x\x00")
    assert not re.search(NOT_BLANK_LINE_PATTERN, "x\ny")  # (Python's $ passes a final \n)
    assert re.search(NOT_BLANK_LINE_PATTERN, "x y")
