"""Knowledge bases (``/knowledge-bases``): an organization's documents, their chunks and the
full-text search over them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from voicedock.domain.knowledge import (
    EmbeddedChunk,
    KnowledgeBase,
    KnowledgeChunk,
    KnowledgeDocument,
    KnowledgeHit,
    KnowledgeUse,
)


class KnowledgeWrites(Protocol):
    async def get_knowledge_base(
        self, organization_id: str, base_id: str
    ) -> KnowledgeBase | None: ...
    async def insert_knowledge_base(self, base: KnowledgeBase) -> None: ...
    async def update_knowledge_base(self, base: KnowledgeBase) -> None: ...
    async def delete_knowledge_base(self, organization_id: str, base_id: str) -> bool:
        """The base, its documents and their chunks; whether there was one."""
        ...

    async def insert_knowledge_document(
        self, document: KnowledgeDocument, chunks: Sequence[KnowledgeChunk]
    ) -> None:
        """The document and its chunks, indexed for search."""
        ...

    async def delete_knowledge_document(self, organization_id: str, document_id: str) -> bool:
        """The document and its chunks; whether there was one."""
        ...

    async def knowledge_use_locked(self, organization_id: str) -> KnowledgeUse:
        """What the organization's bases hold, read so that no other transaction adds to them
        until this one ends (the operator's bounds are checked on it)."""
        ...


class KnowledgeReads(Protocol):
    async def get_knowledge_base(
        self, organization_id: str, base_id: str
    ) -> KnowledgeBase | None: ...
    async def list_knowledge_bases(self, organization_id: str) -> list[KnowledgeBase]: ...
    async def get_knowledge_document(
        self, organization_id: str, document_id: str
    ) -> KnowledgeDocument | None: ...
    async def list_knowledge_documents(
        self, organization_id: str, base_id: str
    ) -> list[KnowledgeDocument]: ...
    async def knowledge_vectors(self, organization_id: str, base_id: str) -> list[EmbeddedChunk]:
        """The base's chunks that have a vector, with it and its model."""
        ...

    async def knowledge_use(self, organization_id: str) -> KnowledgeUse:
        """What the organization's bases hold together."""
        ...

    async def knowledge_chunks(
        self, organization_id: str, document_id: str
    ) -> list[KnowledgeChunk]:
        """The document's chunks in their order."""
        ...

    async def search_knowledge(
        self,
        organization_id: str,
        base_ids: Sequence[str],
        words: Sequence[str],
        limit: int,
    ) -> list[KnowledgeHit]:
        """The chunks of the organization's bases ``base_ids`` that hold any of ``words``
        (lower-case words, as ``knowledge/search.py`` reads a query), the most relevant first,
        at most ``limit``."""
        ...


__all__ = ["KnowledgeReads", "KnowledgeWrites"]
