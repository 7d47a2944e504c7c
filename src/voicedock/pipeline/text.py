"""Text helpers for speaking: sentence splitting for streamed TTS and word-level cutting."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
# Long clauses are split at a comma so the first audio is not held back by a long sentence.
_SOFT_LIMIT = 120


def split_sentences(text: str) -> list[str]:
    """Split complete text into speakable sentences (non-empty, stripped)."""
    parts: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        parts.extend(_split_long(sentence.strip()))
    return [p for p in parts if p]


def _split_long(sentence: str) -> list[str]:
    if len(sentence) <= _SOFT_LIMIT:
        return [sentence]
    cut = sentence.rfind(", ", 0, _SOFT_LIMIT)
    if cut <= 0:
        return [sentence]
    return [sentence[: cut + 1], *_split_long(sentence[cut + 2 :].strip())]


class SentenceBuffer:
    """Collect streamed text chunks; hand out each sentence as soon as it is complete."""

    def __init__(self) -> None:
        self._buffer = ""

    def push(self, chunk: str) -> list[str]:
        self._buffer += chunk
        pieces = _SENTENCE_END.split(self._buffer)
        if len(pieces) == 1 and len(self._buffer) <= _SOFT_LIMIT:
            return []
        *complete, self._buffer = pieces
        done: list[str] = []
        for piece in complete:
            done.extend(_split_long(piece.strip()))
        if len(self._buffer) > _SOFT_LIMIT:
            *more, self._buffer = _split_long(self._buffer)
            done.extend(more)
        return [d for d in done if d]

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer.strip(), ""
        return split_sentences(rest) if rest else []


def first_words(text: str, fraction: float) -> str:
    """The leading share of `text`'s words, for what a caller heard before cutting in."""
    words = text.split()
    if fraction >= 1.0:
        return text.strip()
    keep = max(0, min(len(words), round(len(words) * fraction)))
    return " ".join(words[:keep])
