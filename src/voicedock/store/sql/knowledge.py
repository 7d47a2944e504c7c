"""Knowledge bases, their documents and chunks in SQL, and the full-text search over the
chunks: SQLite's FTS5 (``bm25``, Porter stems) and PostgreSQL's ``tsvector`` (``ts_rank``,
English stems), each from its migration ``036_knowledge_bases.sql``."""

# Statements are assembled only from constant table/column names; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence

from voicedock.domain.knowledge import (
    EmbeddedChunk,
    KnowledgeBase,
    KnowledgeChunk,
    KnowledgeDocument,
    KnowledgeHit,
    KnowledgeUse,
)
from voicedock.store.sql.base import StorePart, TransactionPart
from voicedock.store.sql.conn import Row, SqlValue, marks
from voicedock.store.sql.rows import (
    KNOWLEDGE_BASES,
    KNOWLEDGE_DOCUMENTS,
    ORGANIZATIONS,
    integer,
    number,
    text,
)

_CHUNKS_PER_INSERT = 100  # rows of one INSERT (6 values each: well within both backends' bound)

# The best chunks ranked by the index alone (their words; its scope column weighs nothing),
# only those joined to their rows and their documents' names.
_SQLITE_SEARCH = (
    "SELECT c.knowledge_base_id, c.document_id, d.name AS document_name, c.position, c.text,"
    " best.score FROM ("
    " SELECT rowid AS id, -bm25(knowledge_chunks_fts, 1.0, 0.0) AS score"
    " FROM knowledge_chunks_fts WHERE knowledge_chunks_fts MATCH ?"
    " ORDER BY score DESC, rowid LIMIT ?) AS best"
    " JOIN knowledge_chunks c ON c.id = best.id"
    " JOIN knowledge_documents d ON d.id = c.document_id"
    " WHERE c.organization_id = ?"
    " ORDER BY best.score DESC, best.id"
)
# PostgreSQL ranks (``ts_rank``) every row its query reaches, and a word most chunks hold
# reaches most of the base. So it ranks the chunks that hold the question's rarer words: the
# rarest first, as long as the chunks they reach stay within _RANKED_AT_MOST (counted in
# knowledge_terms); each of those is ranked by all the words. The words reaching more are left
# out of the choice, not of the rank; when the rarer words reach fewer chunks than the search
# wants, all of them choose.
_RANKED_AT_MOST = 1500
_POSTGRES_TERMS = (
    "SELECT lexeme, sum(chunks) AS chunks FROM knowledge_terms"
    " WHERE knowledge_base_id IN ({bases})"
    " AND lexeme = ANY(tsvector_to_array(to_tsvector('english', ?)))"
    " GROUP BY lexeme ORDER BY chunks, lexeme"
)
_POSTGRES_SEARCH = (  # ranked on the vectors alone; the best rows' text and names joined after
    # The rarer words as a subquery: the planner, not seeing them, reaches their rows through
    # the GIN index; seeing them, it may test every row of the organization against them.
    "SELECT c.knowledge_base_id, c.document_id, d.name AS document_name, c.position, c.text,"
    " best.score FROM ("
    " SELECT c.id, ts_rank(c.words, q.query) AS score"
    " FROM knowledge_chunks c, to_tsquery('english', ?) AS q(query)"
    " WHERE c.words @@ (SELECT CAST(? AS tsquery)) AND c.organization_id = ?"
    " AND c.knowledge_base_id IN ({bases})"
    " ORDER BY score DESC, c.id LIMIT ?) AS best"
    " JOIN knowledge_chunks c ON c.id = best.id"
    " JOIN knowledge_documents d ON d.id = c.document_id"
    " ORDER BY best.score DESC, best.id"
)
# A document's words added to (or taken from) its base's counts; in the order of the words, so
# that two writers of one base take the rows' locks in the same order.
_TERMS_ADDED = (
    "INSERT INTO knowledge_terms (knowledge_base_id, lexeme, chunks)"
    " SELECT knowledge_base_id, lexeme, count(*)"
    " FROM knowledge_chunks, unnest(tsvector_to_array(words)) AS lexeme"
    " WHERE document_id = ? GROUP BY knowledge_base_id, lexeme ORDER BY lexeme"
    " ON CONFLICT (knowledge_base_id, lexeme)"
    " DO UPDATE SET chunks = knowledge_terms.chunks + excluded.chunks"
)
_TERMS_TAKEN = (
    "UPDATE knowledge_terms t SET chunks = t.chunks - gone.chunks FROM ("
    " SELECT knowledge_base_id, lexeme, count(*) AS chunks"
    " FROM knowledge_chunks, unnest(tsvector_to_array(words)) AS lexeme"
    " WHERE document_id = ? AND organization_id = ? GROUP BY knowledge_base_id, lexeme) AS gone"
    " WHERE t.knowledge_base_id = gone.knowledge_base_id AND t.lexeme = gone.lexeme"
)
_TERMS_EMPTIED = "DELETE FROM knowledge_terms WHERE knowledge_base_id = ? AND chunks <= 0"


class SqlKnowledgeWrites(TransactionPart):
    """Knowledge bases and documents inside an open transaction."""

    async def get_knowledge_base(self, organization_id: str, base_id: str) -> KnowledgeBase | None:
        return await self._by_id(KNOWLEDGE_BASES, organization_id, base_id)

    async def insert_knowledge_base(self, base: KnowledgeBase) -> None:
        await self._insert(KNOWLEDGE_BASES, base)

    async def update_knowledge_base(self, base: KnowledgeBase) -> None:
        await self._touched(KNOWLEDGE_BASES, base, ("name", "description"), "knowledge base")

    async def delete_knowledge_base(self, organization_id: str, base_id: str) -> bool:
        await self._conn.execute(  # chunks name their base without a foreign key
            "DELETE FROM knowledge_chunks WHERE knowledge_base_id = ? AND organization_id = ?",
            base_id,
            organization_id,
        )
        return await self._delete(KNOWLEDGE_BASES, organization_id, base_id)

    async def insert_knowledge_document(
        self, document: KnowledgeDocument, chunks: Sequence[KnowledgeChunk]
    ) -> None:
        await self._insert(KNOWLEDGE_DOCUMENTS, document)
        for start in range(0, len(chunks), _CHUNKS_PER_INSERT):
            batch = chunks[start : start + _CHUNKS_PER_INSERT]
            rows = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(batch))
            args: list[SqlValue] = []
            for chunk in batch:
                args += [
                    document.organization_id,
                    document.knowledge_base_id,
                    document.id,
                    chunk.position,
                    chunk.text,
                    chunk.embedding,
                ]
            await self._conn.execute(
                "INSERT INTO knowledge_chunks"
                " (organization_id, knowledge_base_id, document_id, position, text, embedding)"
                f" VALUES {rows}",
                *args,
            )
        if self._dialect.name == "postgres":
            await self._conn.execute(_TERMS_ADDED, document.id)

    async def delete_knowledge_document(self, organization_id: str, document_id: str) -> bool:
        if self._dialect.name == "postgres":
            await self._conn.execute(_TERMS_TAKEN, document_id, organization_id)
            row = await self._conn.fetchrow(
                "SELECT knowledge_base_id FROM knowledge_documents WHERE id = ?", document_id
            )
            if row is not None:
                await self._conn.execute(_TERMS_EMPTIED, text(row["knowledge_base_id"]))
        await self._conn.execute(  # explicitly: SQLite's index is kept by the delete trigger
            "DELETE FROM knowledge_chunks WHERE document_id = ? AND organization_id = ?",
            document_id,
            organization_id,
        )
        return await self._delete(KNOWLEDGE_DOCUMENTS, organization_id, document_id)

    async def knowledge_use_locked(self, organization_id: str) -> KnowledgeUse:
        await self._by_id(ORGANIZATIONS, None, organization_id, locked=True)
        return await _use(self, organization_id)


class SqlKnowledgeReads(StorePart):
    """Knowledge bases, documents, chunks and the search."""

    async def get_knowledge_base(self, organization_id: str, base_id: str) -> KnowledgeBase | None:
        return await self._by_id(KNOWLEDGE_BASES, organization_id, base_id)

    async def list_knowledge_bases(self, organization_id: str) -> list[KnowledgeBase]:
        return await self._of_organization(KNOWLEDGE_BASES, organization_id)

    async def get_knowledge_document(
        self, organization_id: str, document_id: str
    ) -> KnowledgeDocument | None:
        return await self._by_id(KNOWLEDGE_DOCUMENTS, organization_id, document_id)

    async def list_knowledge_documents(
        self, organization_id: str, base_id: str
    ) -> list[KnowledgeDocument]:
        return await self._of_organization(
            KNOWLEDGE_DOCUMENTS, organization_id, knowledge_base_id=base_id
        )

    async def knowledge_chunks(
        self, organization_id: str, document_id: str
    ) -> list[KnowledgeChunk]:
        rows = await self._reader.fetch(
            "SELECT position, text FROM knowledge_chunks"
            " WHERE organization_id = ? AND document_id = ? ORDER BY position",
            organization_id,
            document_id,
        )
        return [KnowledgeChunk(document_id, integer(r["position"]), text(r["text"])) for r in rows]

    async def knowledge_vectors(self, organization_id: str, base_id: str) -> list[EmbeddedChunk]:
        rows = await self._reader.fetch(
            "SELECT c.document_id, d.name AS document_name, c.position, c.text,"
            " d.embedding_model, c.embedding"
            " FROM knowledge_chunks c JOIN knowledge_documents d ON d.id = c.document_id"
            " WHERE c.organization_id = ? AND c.knowledge_base_id = ?"
            " AND c.embedding IS NOT NULL AND d.embedding_model IS NOT NULL"
            " ORDER BY c.id",
            organization_id,
            base_id,
        )
        return [
            EmbeddedChunk(
                _hit(r, base_id, 0.0),
                model=text(r["embedding_model"]),
                vector=_bytes(r["embedding"]),
            )
            for r in rows
        ]

    async def knowledge_use(self, organization_id: str) -> KnowledgeUse:
        return await _use(self, organization_id)

    async def search_knowledge(
        self,
        organization_id: str,
        base_ids: Sequence[str],
        words: Sequence[str],
        limit: int,
    ) -> list[KnowledgeHit]:
        if not words or not base_ids or limit < 1:
            return []
        if self._dialect.name == "postgres":
            chosen = await self._rarer_words(base_ids, words, limit)
            if not chosen:
                return []
            rows = await self._reader.fetch(
                _POSTGRES_SEARCH.format(bases=marks(base_ids)),
                " | ".join(words),
                " | ".join(chosen),
                organization_id,
                *base_ids,
                limit,
            )
        else:
            rows = await self._reader.fetch(
                _SQLITE_SEARCH, _sqlite_match(base_ids, words), limit, organization_id
            )
        return [_hit(r, text(r["knowledge_base_id"]), number(r["score"])) for r in rows]

    async def _rarer_words(
        self, base_ids: Sequence[str], words: Sequence[str], limit: int
    ) -> list[str]:
        """The lexemes of ``words`` that choose the chunks PostgreSQL ranks: the rarest in the
        bases first, while the chunks they reach stay within _RANKED_AT_MOST (at least one
        word; all of them when the rarer ones reach fewer than ``limit``). None: no chunk holds
        any of them."""
        rows = await self._reader.fetch(
            _POSTGRES_TERMS.format(bases=marks(base_ids)), *base_ids, " ".join(words)
        )
        counted = [(text(r["lexeme"]), integer(r["chunks"])) for r in rows]
        chosen: list[str] = []
        reached = 0
        for lexeme, chunks in counted:
            if chosen and reached + chunks > _RANKED_AT_MOST:
                break
            chosen.append(lexeme)
            reached += chunks
        if reached < limit:
            return [lexeme for lexeme, _ in counted]
        return chosen


def _sqlite_match(base_ids: Sequence[str], words: Sequence[str]) -> str:
    """The FTS5 query of ``words`` (any of them) in the bases ``base_ids``: each base is the
    token of its id's hex in the scope column (as the migration's triggers write it)."""
    scopes = " OR ".join(f'"b{base_id.encode().hex()}"' for base_id in base_ids)
    terms = " OR ".join(f'"{word}"' for word in words)
    return f"scope : ({scopes}) AND text : ({terms})"


def _hit(row: Row, base_id: str, score: float) -> KnowledgeHit:
    """A chunk of base ``base_id`` as a search finds it, from a row of its document's id and
    name, its position and its text."""
    return KnowledgeHit(
        knowledge_base_id=base_id,
        document_id=text(row["document_id"]),
        document_name=text(row["document_name"]),
        position=integer(row["position"]),
        text=text(row["text"]),
        score=score,
    )


def _bytes(value: SqlValue) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"expected bytes, got {type(value).__name__}")


async def _use(part: SqlKnowledgeWrites | SqlKnowledgeReads, organization_id: str) -> KnowledgeUse:
    reads = part._reads()
    bases = await reads.fetchrow(
        "SELECT count(*) AS n FROM knowledge_bases WHERE organization_id = ?", organization_id
    )
    documents = await reads.fetchrow(
        "SELECT count(*) AS n, coalesce(sum(chunks), 0) AS chunks,"
        " coalesce(sum(size_bytes), 0) AS bytes"
        " FROM knowledge_documents WHERE organization_id = ?",
        organization_id,
    )
    assert bases is not None  # an aggregate's one row
    assert documents is not None
    return KnowledgeUse(
        bases=integer(bases["n"]),
        documents=integer(documents["n"]),
        chunks=integer(documents["chunks"]),
        bytes=integer(documents["bytes"]),
    )


__all__ = ["SqlKnowledgeReads", "SqlKnowledgeWrites"]
