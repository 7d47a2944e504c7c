"""Do-not-call entries: numbers that can exist and ranges of a country calling code, which
numbers an entry lists, and the CSV a list is imported from (bad rows reported, bounded)."""

from __future__ import annotations

import pytest

from voicedock.domain.do_not_call import (
    CsvTooLarge,
    EntryRefused,
    covering,
    csv_entries,
    entry_of,
    is_range,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("+31612345678", "+31612345678"),
        ("  +12125550101 ", "+12125550101"),
        ("+1900*", "+1900*"),
        ("+1*", "+1*"),  # the whole North American plan
        ("+800*", "+800*"),  # a global service's code
        ("+44207*", "+44207*"),
    ],
)
def test_entries(text: str, entry: str) -> None:
    assert entry_of(text) == entry


@pytest.mark.parametrize(
    "text",
    [
        "",
        "*",
        "+*",
        "+999*",  # no country calling code
        "+0612*",
        "0612345678",  # national form
        "+31 6 12345678",
        "+3161234567*8",
        "+1900**",
        "+1234567890123456*",  # 16 digits
        "+15551234567",  # NANP 555: no number in use
        "+31612345",  # too short for the Netherlands
        "+316123456789",  # too long
        "+٣١٦١٢٣٤٥٦٧٨",  # digits, but not ASCII
    ],
)
def test_what_is_no_entry(text: str) -> None:
    with pytest.raises(EntryRefused):
        entry_of(text)


def test_a_number_is_listed_by_itself_and_the_ranges_it_starts_with() -> None:
    keys = covering("+19005550100")
    assert keys[0] == "+19005550100"
    assert {"+1*", "+19*", "+1900*", "+1900555010*", "+19005550100*"} <= set(keys)
    assert "+1212*" not in keys
    assert len(keys) == 12  # the number and a range for each of its 11 digits
    assert all(is_range(k) for k in keys[1:])
    assert not is_range(keys[0])


def test_a_csv_gives_its_entries_and_reports_bad_rows() -> None:
    text = (
        "Number,Name\n"  # a header, whatever its case
        "+31612345678,Ann\n"
        "\n"
        "garbage,Bob\n"
        "+1900*\n"
        "+31612345678,Ann again\n"
        ",empty first cell\n"
        "+15551234567\n"
    )
    read = csv_entries(text, max_rows=100)
    assert read.entries == ["+31612345678", "+1900*"]  # each once, in order
    assert [(r.row, "E.164" in r.message) for r in read.rejected] == [(4, True), (8, False)]
    assert "valid phone number" in read.rejected[1].message
    assert "garbage" not in str(read.rejected)  # a row's value is not echoed


def test_a_first_row_that_is_an_entry_is_not_a_header() -> None:
    assert csv_entries("+31612345678\n+1900*\n", max_rows=2).entries == [
        "+31612345678",
        "+1900*",
    ]


def test_a_csv_is_bounded() -> None:
    csv_entries("+31612345678\n" * 10, max_rows=10)
    with pytest.raises(CsvTooLarge):
        csv_entries("+31612345678\n" * 11, max_rows=10)
