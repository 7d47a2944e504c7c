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
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from voicedock.domain.provider_urls import url_problem
from voicedock.domain.timestamps import utcnow
from voicedock.validation import NOT_BLANK_LINE_PATTERN

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
MAX_EMBEDDINGS_URL_CHARS = 500
MAX_EMBEDDINGS_MODEL_CHARS = 200
# The name of one of the organization's provider keys, as ``domain/tenant_provider_fields.py``
# states it (not imported: that module imports this one through the assistant's settings).
_KEY_NAME_MAX = 64
_KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


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
    embedding_model: str | None = None  # the model its chunks' vectors are of (None: none)
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class KnowledgeChunk:
    """A piece of a document's text, the unit a search finds (``position``: its place in the
    document, from 0)."""

    document_id: str
    position: int
    text: str
    embedding: bytes | None = None  # its vector (float32 little-endian), where it has one


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
class EmbeddedChunk:
    """A chunk with its vector, as a search by meaning compares it (``model``: the one that
    gave the vector; a query is compared only with vectors of its own model)."""

    chunk: KnowledgeHit  # its ``score`` unset (0)
    model: str
    vector: bytes


class KnowledgeEmbeddings(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """An organization's own OpenAI-compatible embeddings endpoint, used for its knowledge
    bases instead of the operator's: ``{url}/embeddings`` is asked for ``model``'s vectors,
    with the provider key named ``api_key_ref`` as the bearer token (none: no token). Only the
    key's name is kept here; the key stays sealed in ``/provider-keys``."""

    url: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_EMBEDDINGS_URL_CHARS,
            pattern=r"^https?://",
            description="The endpoint's base URL: http or https, a host, an optional port and a "
            "plain path, no credentials, query or fragment (POST {url}/embeddings is asked); "
            "checked against the operator's egress policy (400 URL refused).",
        ),
    ]
    model: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_EMBEDDINGS_MODEL_CHARS,
            pattern=NOT_BLANK_LINE_PATTERN,
            description="The embeddings model the endpoint is asked for.",
        ),
    ]
    api_key_ref: (
        Annotated[
            str,
            Meta(
                pattern=_KEY_NAME_PATTERN,
                max_length=_KEY_NAME_MAX,
                description="The name of one of the organization's provider keys "
                "(/provider-keys), sent as the bearer token (422 when it names none of them; "
                '403 where the operator does not allow them, [byok] mode = "off"); left out: '
                "no token.",
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        # The client appends /embeddings: a query or a fragment would steer the request, and
        # credentials would be shown wherever the setting is.
        problem = url_problem(self.url)
        if problem is not None:
            raise ValueError(f"url: {problem}")


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
    "MAX_EMBEDDINGS_MODEL_CHARS",
    "MAX_EMBEDDINGS_URL_CHARS",
    "MAX_NAME_CHARS",
    "MAX_QUERY_CHARS",
    "SEARCH_KNOWLEDGE",
    "EmbeddedChunk",
    "KnowledgeBase",
    "KnowledgeChunk",
    "KnowledgeDocument",
    "KnowledgeEmbeddings",
    "KnowledgeHit",
    "KnowledgeUse",
    "Retrieval",
]
