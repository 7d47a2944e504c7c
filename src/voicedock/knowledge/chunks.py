"""A document's text cut into the chunks a knowledge-base search finds and an assistant reads.

``chunk_text`` takes text as ``documents.document_text`` returns it (paragraphs separated by a
blank line) and packs whole paragraphs into chunks of at most ``max_chars`` characters. A
paragraph too long for one chunk is cut at sentence ends, a sentence too long at spaces, and a
word too long anywhere. A heading (a short line of its own, no sentence ending, followed by a
paragraph) starts a new chunk, and every chunk of its section begins with it, so that a chunk
found alone still says what it is about. Pure and deterministic.
"""

from __future__ import annotations

import re

MAX_CHUNK_CHARS = 1000

_MAX_HEADING_CHARS = 80
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
_SENTENCE_BREAK = re.compile(r"(?:(?<=[.?!])|(?<=[.?!][\"')\]\u201d\u2019]))\s+|\s*\n\s*")
_WORD_BREAK = re.compile(r"\s+")


def chunk_text(text: str, *, max_chars: int = MAX_CHUNK_CHARS) -> list[str]:
    """The chunks of ``text``, in order, none empty and none over ``max_chars`` characters."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, not {max_chars}")
    paragraphs = [p for p in (p.strip() for p in _PARAGRAPH_BREAK.split(text)) if p]
    sections: list[tuple[list[str], list[str]]] = []  # (heading lines, paragraphs)
    for i, paragraph in enumerate(paragraphs):
        if _looks_like_heading(paragraph) and i + 1 < len(paragraphs):
            if sections and not sections[-1][1]:
                sections[-1][0].append(paragraph)  # headings in a row head one section
            else:
                sections.append(([paragraph], []))
        elif sections:
            sections[-1][1].append(paragraph)
        else:
            sections.append(([], [paragraph]))
    chunks: list[str] = []
    for headings, body in sections:
        chunks.extend(_section_chunks(headings, body, max_chars))
    return chunks


def _looks_like_heading(paragraph: str) -> bool:
    return (
        "\n" not in paragraph
        and len(paragraph) <= _MAX_HEADING_CHARS
        and paragraph[-1] not in ".?!,;"
        and any(ch.isalpha() for ch in paragraph)
    )


def _section_chunks(headings: list[str], body: list[str], max_chars: int) -> list[str]:
    """One section's chunks, each led by as many of its last heading lines as fit a third of
    ``max_chars``; heading lines that do not fit are kept as the section's first paragraph."""
    carried: list[str] = []
    budget = max_chars // 3
    while headings and len("\n".join([headings[-1], *carried])) <= budget:
        carried.insert(0, headings.pop())
    if headings:
        body = ["\n".join(headings), *body]
    heading = "\n".join(carried)
    room = max_chars - len(heading) - 1 if heading else max_chars
    pieces = [piece for paragraph in body for piece in _split(paragraph, room)]
    chunks = _packed(pieces, room, "\n\n")
    return [f"{heading}\n{chunk}" for chunk in chunks] if heading else chunks


def _split(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters: at sentence ends (or line ends) if
    it can be, else at spaces, else anywhere."""
    if len(text) <= limit:
        return [text]
    for pattern in (_SENTENCE_BREAK, _WORD_BREAK):
        parts = [part for part in pattern.split(text) if part]
        if len(parts) > 1:
            return _packed([piece for part in parts for piece in _split(part, limit)], limit, " ")
    return [text[start : start + limit] for start in range(0, len(text), limit)]


def _packed(pieces: list[str], limit: int, separator: str) -> list[str]:
    """``pieces`` joined by ``separator`` into as few strings of at most ``limit`` characters
    as a greedy fill makes (each piece is at most ``limit`` already)."""
    packed: list[str] = []
    for piece in pieces:
        if packed and len(packed[-1]) + len(separator) + len(piece) <= limit:
            packed[-1] += separator + piece
        else:
            packed.append(piece)
    return packed
