"""A search of an organization's knowledge bases: the words of a query (what the caller said,
or what the model asked ``search_knowledge`` for) looked up in the node's full-text index and,
where the bases' chunks have vectors (an embeddings endpoint, ``embeddings.py``), the query's
vector compared with theirs (``vectors.py``); how long it took (a turn's ``retrieval_ms``).

A query is read into its words here, once for both backends: lower-case letters and digits,
the commonest English words left out (they match nearly every chunk and say nothing of what is
asked), each word once, at most ``MAX_QUERY_WORDS``; a chunk that holds any of them may be
found, the ones that hold more and rarer ones first (SQLite's ``bm25``, PostgreSQL's
``ts_rank``).

With vectors the search is by words and by meaning together (``hybrid``): the best chunks of
each way, ranked by reciprocal rank fusion (a chunk's score: the sum over the two lists of
1 / (60 + its rank)), so a chunk both find comes first and a question that shares no word with
the document still finds it. The query's vector failing (the endpoint down) leaves the words:
the search says it went by ``full_text``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from voicedock.domain.knowledge import MAX_QUERY_CHARS, KnowledgeHit
from voicedock.knowledge.embeddings import Embeddings, EmbeddingsFailed, EndpointFor
from voicedock.knowledge.vectors import VectorIndex
from voicedock.store.base import Store

log = logging.getLogger("voicedock.knowledge")
MAX_QUERY_WORDS = 32
FUSION_K = 60  # reciprocal rank fusion's constant (Cormack et al.)
CANDIDATES = 4  # each way gives this many times the chunks asked for, to the fusion
_WORD = re.compile(r"[^\W_]+")
# Words that match nearly every chunk (English; PostgreSQL's english configuration drops these
# and more itself, SQLite's FTS5 keeps every word).
_COMMON_WORDS = (
    "a about above after again all also am an and any are as at be because been before being "
    "below between both but by can could did do does doing down during each few for from "
    "further had has have having he her here hers him his how i if in into is it its itself "
    "just me more most my myself no nor not now of off on once only or other our ours out over "
    "own same she should so some such than that the their theirs them then there these they "
    "this those through to too under until up very was we were what when where which while who "
    "whom why will with would you your yours"
)
_COMMON = frozenset(_COMMON_WORDS.split())
By = Literal["full_text", "hybrid"]


def query_words(query: str) -> list[str]:
    """The words of ``query`` a search looks up (see the module)."""
    words: dict[str, None] = {}
    for word in _WORD.findall(query[:MAX_QUERY_CHARS].lower()):
        if word not in _COMMON:
            words[word] = None
    return list(words)[:MAX_QUERY_WORDS]


@dataclass(frozen=True, slots=True)
class Found:
    """What one search found, best first, how (``by``), and its own time."""

    hits: list[KnowledgeHit]
    took_ms: float
    by: By = "full_text"


class KnowledgeSearch:
    """The node's searches of knowledge bases (one per node): the store's full-text index, and
    the bases' vectors where the organization's chunks are embedded (``endpoint_for``)."""

    def __init__(self, store: Store, embeddings: Embeddings, endpoint_for: EndpointFor) -> None:
        self._store, self._embeddings, self._endpoint_for = store, embeddings, endpoint_for
        self._vectors = VectorIndex(store)

    async def search(
        self, organization_id: str, base_ids: Sequence[str], query: str, limit: int
    ) -> Found:
        """The chunks of the organization's bases ``base_ids`` that answer ``query`` best."""
        t0 = time.perf_counter()
        words = query_words(query)
        wide = limit * CANDIDATES
        by_words = await self._store.search_knowledge(organization_id, base_ids, words, wide)
        by_meaning = await self._by_meaning(organization_id, base_ids, query, wide)
        if by_meaning is None:
            return Found(by_words[:limit], _ms_since(t0))
        return Found(fused(by_words, by_meaning, limit), _ms_since(t0), "hybrid")

    async def _by_meaning(
        self, organization_id: str, base_ids: Sequence[str], query: str, limit: int
    ) -> list[KnowledgeHit] | None:
        """The chunks nearest the query's vector (None: no vectors to compare, or no vector
        for the query)."""
        if not query.strip():
            return None
        endpoint = await self._endpoint_for(organization_id)
        if endpoint is None:
            return None
        vectors = await self._vectors.of_bases(organization_id, base_ids)
        if not vectors.bases:
            return None
        try:
            (vector,) = await self._embeddings.embed(endpoint, [query[:MAX_QUERY_CHARS]])
        except EmbeddingsFailed as exc:
            log.warning("knowledge search by words only: the query's vector failed: %s", exc)
            return None
        return vectors.nearest(endpoint.model, vector, limit)

    async def aclose(self) -> None:
        await self._embeddings.aclose()


def fused(
    first: Sequence[KnowledgeHit], second: Sequence[KnowledgeHit], limit: int
) -> list[KnowledgeHit]:
    """Two rankings of chunks as one (reciprocal rank fusion), best first, at most ``limit``;
    a chunk's ``score`` is its fused score."""
    scores: dict[tuple[str, int], float] = {}
    hits: dict[tuple[str, int], KnowledgeHit] = {}
    for ranking in (first, second):
        for rank, hit in enumerate(ranking, 1):
            key = (hit.document_id, hit.position)
            scores[key] = scores.get(key, 0.0) + 1.0 / (FUSION_K + rank)
            hits.setdefault(key, hit)
    best = sorted(scores, key=lambda key: -scores[key])[:limit]
    return [replace(hits[key], score=round(scores[key], 6)) for key in best]


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


__all__ = ["MAX_QUERY_WORDS", "By", "Found", "KnowledgeSearch", "fused", "query_words"]
