"""The text read from each type of knowledge-base document, and the documents refused."""

from __future__ import annotations

import io
import random

import pytest
from pypdf import PdfReader, PdfWriter

from voicedock.knowledge.documents import DOCUMENT_TYPES, UnreadableDocument, document_text

pytestmark = pytest.mark.unit

SENTENCE = "Refills take two working days."


def pdf_of(*page_texts: str) -> bytes:
    """A minimal PDF 1.4, one page per text, each shown in Helvetica; its xref table's offsets
    are computed as the objects are written."""
    pages = len(page_texts)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(page_texts):
        content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> " + f"/Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def encrypted(data: bytes, *, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def reason_of(data: bytes, content_type: str, **options: int) -> str:
    with pytest.raises(UnreadableDocument) as raised:
        document_text(data, content_type, **options)
    assert str(raised.value) == raised.value.reason
    return raised.value.reason


def test_the_types_read() -> None:
    assert DOCUMENT_TYPES == ("text/plain", "text/markdown", "text/html", "application/pdf")


def test_plain_text_loses_its_bom_and_its_stray_whitespace() -> None:
    data = "\ufeff  Opening hours:\t\tnine  to five.\r\n\r\n\r\n\r\nClosed\x00 on Sundays. \n"
    text = document_text(data.encode(), "text/plain; charset=utf-8")
    assert text == "Opening hours: nine to five.\n\nClosed on Sundays."


def test_markdown_loses_its_markup_and_keeps_its_words() -> None:
    data = """# Refills #

Refills take **two** working *days*, see [our policy](https://example.com/p) ![logo](l.png).

- Call `the pharmacy` first
2. Then _wait_ for the snake_case_name
> A <b>quoted</b> note

| Day | Hours |
|-----|:-----:|
| Mon | 9-5 |

```
keep **this** as it is
```
"""
    text = document_text(data.encode(), "text/markdown")
    assert text == (
        "Refills\n\n"
        "Refills take two working days, see our policy.\n\n"
        "Call the pharmacy first\nThen wait for the snake_case_name\nA quoted note\n\n"
        "Day Hours\nMon 9-5\n\n"
        "keep **this** as it is"
    )


def test_html_keeps_the_bodys_text_in_blocks() -> None:
    data = """<!doctype html><html><head><title>Not this</title><style>p {}</style></head>
    <body><h2>Refills</h2><p>Two   working
    days &amp; no&nbsp;more.<br>Ask at the desk.</p>
    <script>var hidden = "script text";</script><noscript>Turn on JavaScript</noscript>
    <ul><li>Mondays</li><li>Fridays</li></ul><div>Caf&eacute; &#8212; open</div></body></html>"""
    text = document_text(data.encode(), "text/html")
    assert text == (
        "Refills\n\nTwo working days & no more.\nAsk at the desk.\n\n"
        "Mondays\nFridays\n\nCafé — open"
    )


def test_a_pdfs_text_is_read_page_by_page() -> None:
    assert document_text(pdf_of(SENTENCE), "application/pdf") == SENTENCE
    two_pages = pdf_of(SENTENCE, "Ask at the desk.")
    assert document_text(two_pages, "application/pdf") == f"{SENTENCE}\n\nAsk at the desk."


def test_a_pdf_encrypted_for_its_owner_only_is_read() -> None:
    assert document_text(encrypted(pdf_of(SENTENCE), user_password=""), "application/pdf") == (
        SENTENCE
    )


def test_an_encrypted_pdf_is_refused() -> None:
    data = encrypted(pdf_of(SENTENCE), user_password="secret")
    assert reason_of(data, "application/pdf") == "the PDF is encrypted"


def test_a_broken_pdf_is_refused() -> None:
    data = b"%PDF-1.4\n" + random.Random(7).randbytes(4000)
    assert reason_of(data, "application/pdf") == "the PDF could not be read"


def test_a_pdf_over_the_page_limit_is_refused() -> None:
    data = pdf_of(SENTENCE, SENTENCE)
    assert reason_of(data, "application/pdf", max_pages=1) == "the PDF has more than 1 pages"
    assert SENTENCE in document_text(data, "application/pdf", max_pages=2)


def test_text_that_is_not_utf8_is_refused() -> None:
    data = "Café".encode("latin-1")
    for content_type in ("text/plain", "text/markdown", "text/html"):
        assert reason_of(data, content_type) == "the text is not UTF-8"


def test_an_unknown_type_is_refused() -> None:
    assert reason_of(b"PK\x03\x04", "application/zip") == (
        "documents of type application/zip are not read"
    )


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"", "text/plain"),
        (b" \t\r\n\n\x00 ", "text/plain"),
        (b"---\n\n***\n", "text/markdown"),
        (b"<html><head><title>Title only</title></head><body> </body></html>", "text/html"),
        (pdf_of(""), "application/pdf"),
    ],
)
def test_a_document_without_text_is_refused(data: bytes, content_type: str) -> None:
    assert reason_of(data, content_type) == "the document holds no text"
