"""A month's statement as a PDF a client can be sent (``GET /billing/statements?format=pdf``).

A small PDF 1.4 writer, no library and nothing fetched: A4 pages of text in the standard
Helvetica fonts (every PDF reader has them, nothing embedded), WinAnsi-encoded (a character
outside it is written ``?``), a cross-reference table with each object's byte offset.
"""

from __future__ import annotations

from collections.abc import Sequence

from voicedock.organizations.statements import MonthStatement

_PAGE_WIDTH, _PAGE_HEIGHT = 595, 842  # A4 in points
_MARGIN = 50
_LEADING = 14
_LINES_PER_PAGE = (_PAGE_HEIGHT - 2 * _MARGIN) // _LEADING
# Columns: day, direction, country, type, calls, minutes, amount (x of each, in points).
_COLUMNS = (0, 75, 140, 190, 300, 345, 420)
_HEADER = ("Day", "Direction", "Country", "Number type", "Calls", "Minutes", "Amount")

Row = tuple[str, ...]  # a heading (one cell, bold) or a table row (a cell per column)


def statement_pdf(statement: MonthStatement) -> bytes:
    rows: list[tuple[bool, Row]] = [
        (True, (f"Statement {statement.month}",)),
        (False, (statement.organization,)),
        (False, ("",)),
        (True, _HEADER),
    ]
    for line in statement.lines:
        amount = f"{line.amount} {line.currency}"
        cells = (line.day, line.direction, line.country, line.number_type)
        rows.append((False, (*cells, str(line.calls), line.billed_minutes, amount)))
    rows.append((False, ("",)))
    for total in statement.totals:
        total_amount = f"{total.amount} {total.currency}"
        totals = ("Total", "", "", "", str(total.calls), total.billed_minutes, total_amount)
        rows.append((True, totals))
    if not statement.lines:
        rows.append((False, ("No rated calls this month.",)))
    if statement.spending_limit is not None:
        rows.append((False, (f"Monthly spending limit: {statement.spending_limit}",)))
    pages = [rows[i : i + _LINES_PER_PAGE] for i in range(0, len(rows), _LINES_PER_PAGE)]
    return _document([_content(page) for page in pages])


def _content(rows: Sequence[tuple[bool, Row]]) -> bytes:
    out = ["BT"]
    y = _PAGE_HEIGHT - _MARGIN
    for bold, cells in rows:
        font = "/F2" if bold else "/F1"
        for x, cell in zip(_COLUMNS, cells, strict=False):
            if cell:
                out.append(f"{font} 10 Tf 1 0 0 1 {_MARGIN + x} {y} Tm ({_escape(cell)}) Tj")
        y -= _LEADING
    out.append("ET")
    return "\n".join(out).encode("cp1252")


def _escape(text: str) -> str:
    safe = text.encode("cp1252", errors="replace").decode("cp1252")
    safe = "".join(c if c.isprintable() else "?" for c in safe)
    return safe.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _document(contents: Sequence[bytes]) -> bytes:
    """Objects: 1 catalog, 2 pages, 3-4 fonts, then each page and its content stream."""
    first_page = 5
    kids = " ".join(f"{first_page + 2 * i} 0 R" for i in range(len(contents)))
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(contents)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    for i, content in enumerate(contents):
        stream_ref = first_page + 2 * i + 1
        objects.append(
            (
                f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {_PAGE_WIDTH} {_PAGE_HEIGHT}] "
                f"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {stream_ref} 0 R >>"
            ).encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


__all__ = ["statement_pdf"]
