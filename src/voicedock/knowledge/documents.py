"""The plain text of a document an organization puts in its knowledge base.

``document_text`` takes the bytes of an uploaded document (plain text, Markdown, HTML or PDF,
the ``DOCUMENT_TYPES``) and returns its text: the markup gone, the whitespace normalized and
paragraphs separated by a blank line, ready for ``chunks.chunk_text``. A document it cannot
read raises ``UnreadableDocument``, whose ``reason`` can be shown to the organization as it is.
Pure: no files, no network, no database.
"""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

from pypdf import PasswordType, PdfReader

DOCUMENT_TYPES: tuple[str, ...] = ("text/plain", "text/markdown", "text/html", "application/pdf")


class UnreadableDocument(ValueError):
    """A document whose text cannot be had; ``reason`` says why, in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def document_text(data: bytes, content_type: str, *, max_pages: int = 500) -> str:
    """The plain text of ``data``, read as ``content_type`` (its parameters are ignored: text
    is UTF-8); a PDF of more than ``max_pages`` pages is refused before its text is read."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/pdf":
        text = _pdf_text(data, max_pages)
    elif kind in DOCUMENT_TYPES:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UnreadableDocument("the text is not UTF-8") from None
        if kind == "text/markdown":
            text = _markdown_text(text)
        elif kind == "text/html":
            text = _html_text(text)
    else:
        raise UnreadableDocument(f"documents of type {kind or 'unknown'} are not read")
    text = _normalized(text)
    if not any(ch.isalnum() for ch in text):
        raise UnreadableDocument("the document holds no text")
    return text


def _normalized(text: str) -> str:
    text = re.sub(r"\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028\u2029]", "\n", text)
    text = re.sub(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]", "", text)
    text = re.sub(r"[^\S\n]+", " ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _pdf_text(data: bytes, max_pages: int) -> str:
    try:
        reader = PdfReader(io.BytesIO(data))
        locked = reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED
        pages = 0 if locked else len(reader.pages)
    except Exception as exc:
        raise UnreadableDocument("the PDF could not be read") from exc
    if locked:
        raise UnreadableDocument("the PDF is encrypted")
    if pages > max_pages:
        raise UnreadableDocument(f"the PDF has more than {max_pages} pages")
    try:
        return "\n\n".join(page.extract_text() for page in reader.pages)
    except Exception as exc:
        raise UnreadableDocument("the PDF could not be read") from exc


_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_RULE = re.compile(r"^\s{0,3}(?:[-*_=]\s*){3,}$")  # or a setext heading's underline
_DROPPED_LINE = re.compile(
    r"^[\s|:-]*-[\s|:-]*$"  # a table's header separator
    r"|^\s{0,3}\[[^\]]+\]:\s*\S+.*$"  # a link definition
)
_LINE_MARKERS = re.compile(r"^\s*(?:>\s?)*(?:(?:[-*+]|\d{1,9}[.)])\s+)?")
_INLINE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\s*!\[[^\]]*\](?:\([^)]*\)|\[[^\]]*\])?"), ""),  # images
    (re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])"), r"\1"),  # links
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),  # autolinks
    (re.compile(r"</?[A-Za-z][^>]*>"), ""),  # HTML tags
    (re.compile(r"(`+)(.+?)\1"), r"\2"),  # inline code
    (re.compile(r"(\*{1,3})(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # emphasis, strong
    (re.compile(r"(?<!\w)(_{1,3})(?=\S)(.+?)(?<=\S)\1(?!\w)"), r"\2"),
    (re.compile(r"~~(.+?)~~"), r"\1"),  # strikethrough
    (re.compile(r"\|"), " "),  # table cells
    (re.compile(r"\\([\\`*_{}\[\]()#+\-.!>~<])"), r"\1"),  # escapes
)


def _markdown_text(text: str) -> str:
    lines: list[str] = []
    fence = ""
    for line in re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL).splitlines():
        opening = _FENCE.match(line)
        if fence:
            if opening and opening.group(1).startswith(fence):
                fence = ""
            else:
                lines.append(line)
        elif opening:
            fence = opening.group(1)
        elif _RULE.match(line):
            lines.append("")
        elif not _DROPPED_LINE.match(line):
            heading = _HEADING.match(line)
            line = heading.group(1) if heading else _LINE_MARKERS.sub("", line, count=1)
            for pattern, replacement in _INLINE:
                line = pattern.sub(replacement, line)
            lines.extend(["", line, ""] if heading else [line])
    return "\n".join(lines)


_SKIPPED = frozenset({"script", "style", "noscript", "template", "head"})
_LINE_TAGS = frozenset({"br", "li", "tr"})
_PARAGRAPH_TAGS = frozenset(
    {"p", "div", "section", "article", "header", "footer", "table", "ul", "ol", "pre"}
    | {"blockquote", "h1", "h2", "h3", "h4", "h5", "h6"}
)


class _HtmlText(HTMLParser):
    """The text of an HTML page, its blocks on lines of their own."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0
        self._preformatted = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self._skipping = 0  # a <head> left open ends here
        elif tag in _SKIPPED:
            self._skipping += 1
        self._boundary(tag, opening=True)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        self._boundary(tag, opening=False)

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data if self._preformatted else re.sub(r"\s+", " ", data))

    def _boundary(self, tag: str, *, opening: bool) -> None:
        if tag == "pre":
            self._preformatted = max(0, self._preformatted + (1 if opening else -1))
        if tag in _PARAGRAPH_TAGS:
            self.parts.append("\n\n")
        elif tag in _LINE_TAGS and opening:
            self.parts.append("\n")
        elif tag in {"td", "th"}:
            self.parts.append(" ")


def _html_text(text: str) -> str:
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)
