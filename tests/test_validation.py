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
    mask_numbers,
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


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("to +4930123456789", "to +493***89"),
        ("to %2B4930123456789", "to +493***89"),
        ("to +49 30 1234567", "to +493***67"),
        ("call-_+4930123456_Ab3dEf9hJk2m", "call-_+493***56_Ab3dEf9hJk2m"),
        ("to 4930123456789.", "to 4930***89."),
        ("to 0030123456789", "to 0030***89"),
        ("(555) 123-4567 called", "5551***67 called"),
        ("555-123-4567", "5551***67"),
        ("555.123.4567", "5551***67"),
        ("030 1234567", "0301***67"),
        ("<sip:4930123456@carrier.example>", "<sip:4930***56@carrier.example>"),
        ("tel:4930123456", "tel:4930***56"),
        ("PJSIP/4930123456789@carrier", "PJSIP/4930***89@carrier"),
        ("sofia/gateway/carrier/4930123456789", "sofia/gateway/carrier/4930***89"),
    ],
)
def test_phone_numbers_in_a_text_are_masked_in_every_form(text: str, shown: str) -> None:
    assert mask_numbers(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-27 16:19:33,123",
        "2026-11-27T16:19:33.123456+00:00",
        "27.11.2026",
        "/calls?start_date=20261126&limit=100",
        "call-outbound-123e4567-e89b-12d3-a456-426614174000",
        "12345678-1234-1234-1234-123456789012",
        "192.168.100.200:5060",
        "[2001:db8::1]:5060",
        "rtp ports 10000-20000",
        "HTTP 503 after 1500 ms",
        "1048576 bytes",
        "took 12.3456789 s",
        "0.30000000000000004",
        "extension 1001, queue 42",
        "sip:1001@pbx.example",
    ],
)
def test_what_is_no_phone_number_is_left_as_it_is(text: str) -> None:
    assert mask_numbers(text) == text


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
