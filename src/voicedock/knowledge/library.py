"""What an organization adds to its knowledge bases, within the operator's bounds
(``[knowledge]``): a base, and a document read into its text once (``documents.py``, off the
event loop: a PDF's pages take time), cut into chunks (``chunks.py``) and stored with them in
one transaction, the organization's totals read locked in it, so two uploads at once cannot
both pass a bound the one would reach."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from voicedock.config.organizations import KnowledgeSettings
from voicedock.domain.knowledge import (
    KnowledgeBase,
    KnowledgeChunk,
    KnowledgeDocument,
    KnowledgeUse,
)
from voicedock.errors import NotFound, Unprocessable, UnsupportedMediaType, UpstreamFailed
from voicedock.knowledge.chunks import chunk_text
from voicedock.knowledge.documents import DOCUMENT_TYPES, UnreadableDocument, document_text
from voicedock.knowledge.embeddings import (
    Embeddings,
    EmbeddingsEndpoint,
    EmbeddingsFailed,
    EndpointFor,
    vector_bytes,
)
from voicedock.store.base import Store, Transaction

LIMIT_REACHED = "Knowledge limit reached"
UNREADABLE = "Unreadable document"
EMBEDDINGS_FAILED = "Embeddings failed"
# What the request that adds a record records with it (its audit event), in the same
# transaction: the new record's id.
Record = Callable[[Transaction, str], Awaitable[None]]


def check_document_type(content_type: str) -> None:
    """415 for a type no document is read as."""
    if content_type not in DOCUMENT_TYPES:
        raise UnsupportedMediaType(
            f"a document must be one of {', '.join(DOCUMENT_TYPES)}, not {content_type or '-'}"
        )


class KnowledgeLibrary:
    """The organizations' knowledge bases as they grow (the store holds them)."""

    def __init__(
        self,
        store: Store,
        settings: KnowledgeSettings,
        embeddings: Embeddings,
        endpoint_for: EndpointFor,
    ) -> None:
        """``endpoint_for``: where an organization's chunks get their vectors (None: none)."""
        self._store = store
        self.settings = settings
        self._embeddings, self._endpoint_for = embeddings, endpoint_for

    async def add_base(self, base: KnowledgeBase, record: Record | None = None) -> None:
        """Store ``base``; 422 ``Knowledge limit reached`` past the organization's bound.
        ``record``: what is recorded with it (its audit event), in the same transaction."""
        async with self._store.transaction() as tx:
            use = await tx.knowledge_use_locked(base.organization_id)
            _within("knowledge bases", use.bases + 1, self.settings.bases_per_organization)
            await tx.insert_knowledge_base(base)
            if record is not None:
                await record(tx, base.id)

    async def add_document(
        self,
        base: KnowledgeBase,
        name: str,
        content_type: str,
        data: bytes,
        record: Record | None = None,
    ) -> KnowledgeDocument:
        """``data`` read as ``content_type`` into ``base``: 415 for a type not read, 422
        ``Unreadable document`` when no text comes out of it, 422 ``Knowledge limit reached``
        past a bound; 404 when the base went meanwhile. ``record``: what is recorded with the
        document (its audit event), in the same transaction."""
        check_document_type(content_type)
        pages = self.settings.pdf_pages
        try:
            text = await asyncio.to_thread(document_text, data, content_type, max_pages=pages)
        except UnreadableDocument as exc:
            raise Unprocessable(
                f"the document could not be read: {exc.reason}", error=UNREADABLE
            ) from None
        document_id = str(uuid.uuid4())
        pieces = chunk_text(text)
        endpoint = await self._endpoint_for(base.organization_id)
        vectors = await self._vectors(endpoint, pieces)
        chunks = [
            KnowledgeChunk(document_id, position, piece, vectors[position] if vectors else None)
            for position, piece in enumerate(pieces)
        ]
        document = KnowledgeDocument(
            id=document_id,
            organization_id=base.organization_id,
            knowledge_base_id=base.id,
            name=name,
            content_type=content_type,
            size_bytes=len(data),
            characters=len(text),
            chunks=len(chunks),
            embedding_model=endpoint.model if vectors and endpoint else None,
        )
        async with self._store.transaction() as tx:
            use = await tx.knowledge_use_locked(base.organization_id)
            self._check_room(use, document)
            current = await tx.get_knowledge_base(base.organization_id, base.id)
            if current is None:
                raise NotFound("knowledge base not found", error="Knowledge base not found")
            await tx.insert_knowledge_document(document, chunks)
            await tx.update_knowledge_base(current)  # changed: the nodes' vectors read again
            if record is not None:
                await record(tx, document.id)
        return document

    async def delete_document(
        self, document: KnowledgeDocument, record: Record | None = None
    ) -> bool:
        """The document and its chunks; whether there was one (``record``: as ``add_base``).
        The organization's row is locked first, as an upload locks it: one change at a time."""
        async with self._store.transaction() as tx:
            await tx.knowledge_use_locked(document.organization_id)
            if not await tx.delete_knowledge_document(document.organization_id, document.id):
                return False
            base = await tx.get_knowledge_base(document.organization_id, document.knowledge_base_id)
            if base is not None:
                await tx.update_knowledge_base(base)  # changed: the nodes' vectors read again
            if record is not None:
                await record(tx, document.id)
        return True

    async def _vectors(
        self, endpoint: EmbeddingsEndpoint | None, pieces: list[str]
    ) -> list[bytes] | None:
        """Each chunk's vector, where there is an embeddings endpoint; 502 ``Embeddings
        failed`` when it gives none (the document is not stored without them)."""
        if endpoint is None or not pieces:
            return None
        try:
            matrix = await self._embeddings.embed(endpoint, pieces)
        except EmbeddingsFailed as exc:
            raise UpstreamFailed(
                f"the embeddings endpoint gave no vectors: {exc.reason}; send the document again",
                error=EMBEDDINGS_FAILED,
            ) from None
        return [vector_bytes(row) for row in matrix]

    def _check_room(self, use: KnowledgeUse, document: KnowledgeDocument) -> None:
        bounds = self.settings
        _within("documents", use.documents + 1, bounds.documents_per_organization)
        _within("chunks", use.chunks + document.chunks, bounds.chunks_per_organization)
        _within(
            "bytes of documents", use.bytes + document.size_bytes, bounds.bytes_per_organization
        )


def _within(what: str, total: int, bound: int) -> None:
    if total > bound:
        raise Unprocessable(
            f"the organization's knowledge bases may hold at most {bound} {what}; "
            "delete documents or bases first",
            error=LIMIT_REACHED,
        )


__all__ = [
    "EMBEDDINGS_FAILED",
    "LIMIT_REACHED",
    "UNREADABLE",
    "KnowledgeLibrary",
    "Record",
    "check_document_type",
]
