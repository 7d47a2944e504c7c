"""A search of an organization's knowledge bases: the words of a query (what the caller said,
or what the model asked ``search_knowledge`` for) looked up in the node's full-text index, and
how long it took (a turn's ``retrieval_ms``).

A query is read into its words here, once for both backends: lower-case letters and digits,
the commonest English words left out (they match nearly every chunk and say nothing of what is
asked), each word once, at most ``MAX_QUERY_WORDS``; a chunk that holds any of them may be
found, the ones that hold more and rarer ones first (SQLite's ``bm25``, PostgreSQL's
``ts_rank``)."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from voicedock.domain.knowledge import MAX_QUERY_CHARS, KnowledgeHit
from voicedock.store.base import Store

MAX_QUERY_WORDS = 32
_WORD = re.compile(r"[^\W_]+")
# Words that match nearly every chunk (English; PostgreSQL's english configuration drops these
# and more itself, SQLite's FTS5 keeps every word).
_COMMON_WORDS = (
    "a an and are as at be been but by can could did do does for from had has have he her his "
    "how i if in into is it its me my no not of on or our she so than that the their them then "
    "there these they this to too was we were what when where which who why will with would "
    "you your"
)
_COMMON = frozenset(_COMMON_WORDS.split())


def query_words(query: str) -> list[str]:
    """The words of ``query`` a search looks up (see the module)."""
    words: dict[str, None] = {}
    for word in _WORD.findall(query[:MAX_QUERY_CHARS].lower()):
        if word not in _COMMON:
            words[word] = None
    return list(words)[:MAX_QUERY_WORDS]


@dataclass(frozen=True, slots=True)
class Found:
    """What one search found, best first, and its own time."""

    hits: list[KnowledgeHit]
    took_ms: float


async def search(
    store: Store, organization_id: str, base_ids: Sequence[str], query: str, limit: int
) -> Found:
    """The chunks of the organization's bases ``base_ids`` that answer ``query`` best."""
    t0 = time.perf_counter()
    words = query_words(query)
    hits = await store.search_knowledge(organization_id, base_ids, words, limit) if words else []
    return Found(hits, (time.perf_counter() - t0) * 1000)


__all__ = ["MAX_QUERY_WORDS", "Found", "query_words", "search"]
