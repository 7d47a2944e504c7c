"""The statement's PDF: a well-formed PDF 1.4 (each object where the cross-reference table says,
the table where ``startxref`` says), its text escaped, pages added as the lines need them."""

from __future__ import annotations

import re

import pytest

from voicedock.api.statement_pdf import statement_pdf
from voicedock.organizations.statements import MonthStatement, StatementLine, StatementTotal

pytestmark = pytest.mark.unit


def _statement(lines: int, name: str = "Acme (NL) \\ Øresund 東京") -> MonthStatement:
    line = StatementLine("EUR", 2, 126, "2.10", "0.46", "2026-11-02", "outbound", "NL", "mobile")
    total = StatementTotal("EUR", 2 * lines, 126 * lines, "4.20", "0.92")
    return MonthStatement(name, "2026-11", [line] * lines, [total], "50.00")


def _check_structure(document: bytes) -> int:
    """The number of pages of a well-formed ``document``."""
    assert document.startswith(b"%PDF-1.4\n")
    xref_at = int(re.findall(rb"startxref\n(\d+)\n%%EOF\n$", document)[0])
    assert document[xref_at:].startswith(b"xref\n0 ")
    count = int(re.match(rb"xref\n0 (\d+)\n", document[xref_at:])[1])  # type: ignore[index]
    offsets = re.findall(rb"(\d{10}) 00000 n \n", document[xref_at:])
    assert len(offsets) == count - 1
    for number, offset in enumerate(offsets, start=1):
        assert document[int(offset) :].startswith(b"%d 0 obj\n" % number)
    for length, stream in re.findall(
        rb"/Length (\d+) >>\nstream\n(.*?)\nendstream", document, re.S
    ):
        assert int(length) == len(stream)
    return int(re.findall(rb"/Count (\d+)", document)[0])


def test_a_statement_is_a_well_formed_pdf_with_its_text_escaped() -> None:
    document = statement_pdf(_statement(3))
    assert _check_structure(document) == 1
    assert b"(Acme \\(NL\\) \\\\ \xd8resund ??) Tj" in document  # WinAnsi, the rest as ?
    assert b"(0.46 EUR) Tj" in document
    assert b"(Monthly spending limit: 50.00) Tj" in document


def test_long_statements_go_on_over_pages() -> None:
    assert _check_structure(statement_pdf(_statement(120))) == 3
    assert b"No rated calls" in statement_pdf(_statement(0))
