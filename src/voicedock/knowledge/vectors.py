"""The knowledge bases' vectors on this node, searched by meaning: each base's vectors read from
the store once into one normalized float32 matrix, kept while the base is unchanged (its
``updated_at``, which every document added or deleted moves, on any node) and for at most
``MAX_BASES`` bases, the least recently searched going first. A query's vector against a base is
one matrix product; only vectors of the query's model are compared.

Vectors are compared here, in the node, on both backends (pgvector is not used: Debian does not
package it for the PostgreSQL it ships, and a base is bounded by the operator's chunks)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

from voicedock.domain.knowledge import KnowledgeHit
from voicedock.knowledge.embeddings import Vectors, vector_of
from voicedock.store.base import Store

MAX_BASES = 64


@dataclass(frozen=True, slots=True)
class _Base:
    stamp: datetime
    by_model: dict[str, tuple[Vectors, list[KnowledgeHit]]]


@dataclass(frozen=True, slots=True)
class BaseVectors:
    """The vectors of the bases one search compares (those that have any)."""

    bases: list[_Base]

    def nearest(self, model: str, query: Vectors, limit: int) -> list[KnowledgeHit]:
        """The chunks whose vectors (of ``model``) are nearest ``query`` (a normalized row),
        nearest first, their ``score`` the cosine."""
        found: list[KnowledgeHit] = []
        for entry in self.bases:
            if model not in entry.by_model:
                continue
            matrix, chunks = entry.by_model[model]
            if matrix.shape[1] != query.shape[0]:
                continue  # the model now gives vectors of another size: none compare
            scores = matrix @ query
            best = np.argsort(-scores)[:limit]
            found += [replace(chunks[i], score=float(scores[i])) for i in best]
        found.sort(key=lambda hit: -hit.score)
        return found[:limit]


class VectorIndex:
    """The node's cache of bases' vectors (one per node)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._bases: OrderedDict[tuple[str, str], _Base] = OrderedDict()

    async def of_bases(self, organization_id: str, base_ids: Sequence[str]) -> BaseVectors:
        """The vectors of the organization's bases ``base_ids`` (each read from the store only
        when it changed since)."""
        entries = [await self._base(organization_id, base_id) for base_id in base_ids]
        return BaseVectors([entry for entry in entries if entry is not None and entry.by_model])

    async def _base(self, organization_id: str, base_id: str) -> _Base | None:
        base = await self._store.get_knowledge_base(organization_id, base_id)
        key = (organization_id, base_id)
        if base is None:
            self._bases.pop(key, None)
            return None
        entry = self._bases.get(key)
        if entry is None or entry.stamp != base.updated_at:
            entry = _Base(base.updated_at, await self._load(organization_id, base_id))
            self._bases[key] = entry
            while len(self._bases) > MAX_BASES:
                self._bases.popitem(last=False)
        self._bases.move_to_end(key)
        return entry

    async def _load(
        self, organization_id: str, base_id: str
    ) -> dict[str, tuple[Vectors, list[KnowledgeHit]]]:
        rows: dict[str, tuple[list[Vectors], list[KnowledgeHit]]] = {}
        for embedded in await self._store.knowledge_vectors(organization_id, base_id):
            vectors, chunks = rows.setdefault(embedded.model, ([], []))
            vector = vector_of(embedded.vector)
            if vectors and vector.shape != vectors[0].shape:
                continue  # a document embedded when the model gave another size
            vectors.append(vector)
            chunks.append(embedded.chunk)
        return {model: (np.vstack(v), c) for model, (v, c) in rows.items()}


__all__ = ["MAX_BASES", "BaseVectors", "VectorIndex"]
