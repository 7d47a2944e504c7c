"""Organizations' knowledge bases as records: a base, its documents, the chunks a document is
cut into, what a search finds, and the bounds an assistant's ``knowledge`` setting states.

A document's text is read once when it is uploaded (``knowledge/documents.py``), cut into chunks
(``knowledge/chunks.py``) and indexed in the node's own database: SQLite's FTS5 on one node,
PostgreSQL's full-text search on several (``store/sql/knowledge.py``). What the operator bounds
(sizes and counts per organization) is ``[knowledge]`` in the settings
(``config/calls.py`` ``KnowledgeSettings``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from voicedock.domain.timestamps import utcnow

# How an assistant retrieves: the model asks with the ``search_knowledge`` tool, or the
# caller's words of each turn are searched and what is found goes into that turn's request.
Retrieval = Literal["tool", "every_turn"]
BY_TOOL: Retrieval = "tool"
EVERY_TURN: Retrieval = "every_turn"
SEARCH_KNOWLEDGE = "search_knowledge"  # the tool's name
MAX_BASES_PER_ASSISTANT = 10
MAX_CHUNKS_PER_SEARCH = 10
DEFAULT_CHUNKS_PER_SEARCH = 3
MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 1000
MAX_QUERY_CHARS = 500


@dataclass(slots=True)
class KnowledgeBase:
    """A set of an organization's documents its assistants may search."""

    id: str
    organization_id: str
    name: str
    description: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class KnowledgeDocument:
    """A document of a knowledge base: what was uploaded (its name, type and size) and what
    was read from it (``characters`` of text, cut into ``chunks``); the text itself is kept
    only in its chunks."""

    id: str
    organization_id: str
    knowledge_base_id: str
    name: str
    content_type: str
    size_bytes: int
    characters: int
    chunks: int
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class KnowledgeChunk:
    """A piece of a document's text, the unit a search finds (``position``: its place in the
    document, from 0)."""

    document_id: str
    position: int
    text: str


@dataclass(frozen=True, slots=True)
class KnowledgeHit:
    """A chunk a search found, best first: ``score`` is the backend's relevance (higher is
    better; comparable within one search, not between backends)."""

    knowledge_base_id: str
    document_id: str
    document_name: str
    position: int
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class KnowledgeUse:
    """What the organization's knowledge bases hold together: the operator's bounds are on
    these."""

    bases: int
    documents: int
    chunks: int
    bytes: int


__all__ = [
    "BY_TOOL",
    "DEFAULT_CHUNKS_PER_SEARCH",
    "EVERY_TURN",
    "MAX_BASES_PER_ASSISTANT",
    "MAX_CHUNKS_PER_SEARCH",
    "MAX_DESCRIPTION_CHARS",
    "MAX_NAME_CHARS",
    "MAX_QUERY_CHARS",
    "SEARCH_KNOWLEDGE",
    "KnowledgeBase",
    "KnowledgeChunk",
    "KnowledgeDocument",
    "KnowledgeHit",
    "KnowledgeUse",
    "Retrieval",
]
