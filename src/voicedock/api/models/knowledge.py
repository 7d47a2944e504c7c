"""``/knowledge-bases``: an organization's knowledge bases, their documents (uploaded as JSON or
as a raw body of the document's own type), the chunks a document is cut into and the search
over them (docs/knowledge.md).

What a document holds is read when it is uploaded (``knowledge/library.py``): a document no text
comes out of is ``422 Unreadable document``, one past the operator's bounds (``[knowledge]``)
``422 Knowledge limit reached``.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, get_args

from msgspec import UNSET, Meta, UnsetType

from voicedock.api.models.base import Body, RecordReply, Reply, of_record
from voicedock.api.models.field_types import Time, text
from voicedock.api.models.operations import Schema, error_response, operation, query_parameters
from voicedock.domain.knowledge import (
    DEFAULT_CHUNKS_PER_SEARCH,
    MAX_CHUNKS_PER_SEARCH,
    MAX_DESCRIPTION_CHARS,
    MAX_NAME_CHARS,
    MAX_QUERY_CHARS,
    KnowledgeHit,
)
from voicedock.domain.knowledge import KnowledgeBase as KnowledgeBaseRecord
from voicedock.domain.knowledge import KnowledgeChunk as KnowledgeChunkRecord
from voicedock.domain.knowledge import KnowledgeDocument as KnowledgeDocumentRecord
from voicedock.knowledge.documents import DOCUMENT_TYPES

PDF = "application/pdf"
# A document's type, as uploaded: what ``knowledge/documents.py`` reads.
DocumentType = Literal["text/plain", "text/markdown", "text/html", "application/pdf"]
assert get_args(DocumentType) == DOCUMENT_TYPES
# Base64 as RFC 4648 writes it (the standard alphabet, padded, no line breaks): what msgspec
# decodes into ``bytes``, stated for the document.
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"

Name = Annotated[
    str, text(MAX_NAME_CHARS, line=True, description="For people (not unique); one line.")
]
Description = Annotated[
    str, text(MAX_DESCRIPTION_CHARS, description="What the base holds, for people.")
]
DocumentName = Annotated[
    str,
    text(MAX_NAME_CHARS, line=True, description="The document's name (a file name, a title)."),
]
Position = Annotated[int, Meta(ge=0, description="The chunk's place in its document, from 0.")]


class KnowledgeBaseCreate(Body, kw_only=True):
    """A knowledge base: a set of the organization's documents its assistants may search
    (an assistant's ``knowledge.knowledge_base_ids``)."""

    name: Name
    description: Description | None = None


class KnowledgeBaseUpdate(Body, kw_only=True):
    """The fields sent replace the base's (``description`` null: none)."""

    name: Name | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET


class KnowledgeDocumentUpload(Body, kw_only=True):
    """A document uploaded as JSON: its text (``text``, for a text type), or its bytes in
    base64 (``data_base64``, any type; a PDF's). The same document may be sent as the raw body
    instead, of its own ``Content-Type``, its name in the query (``?name=``)."""

    SCHEMA: ClassVar[Schema] = {
        "oneOf": [{"required": ["text"]}, {"required": ["data_base64"]}],
        "if": {"properties": {"content_type": {"const": PDF}}},
        "then": {"not": {"required": ["text"]}},
    }

    name: DocumentName
    content_type: Annotated[
        DocumentType,
        Meta(description="How the document is read: its text (UTF-8), Markdown, HTML or a PDF."),
    ]
    text: (
        Annotated[
            str,
            Meta(description="The document's text, for text/plain, text/markdown or text/html."),
        ]
        | UnsetType
    ) = UNSET
    data_base64: (
        Annotated[
            bytes,
            Meta(
                description="The document's bytes in base64 (RFC 4648, padded, no line "
                "breaks): any type, and a PDF's only way in JSON.",
                extra_json_schema={"pattern": BASE64_PATTERN},
            ),
        ]
        | UnsetType
    ) = UNSET


class KnowledgeDocumentQuery(Body, kw_only=True):
    """The query of ``POST /knowledge-bases/{id}/documents``: the document's name, when the
    body is the document itself (not JSON)."""

    name: (
        Annotated[
            str,
            text(
                MAX_NAME_CHARS,
                line=True,
                description="The document's name: required with a raw body (text/plain, "
                "text/markdown, text/html, application/pdf), not given with a JSON one.",
            ),
        ]
        | UnsetType
    ) = UNSET


class KnowledgeSearchRequest(Body, kw_only=True):
    """What to look for in the base: a few words (the commonest English words are left out);
    the chunks that hold the most of them, and the rarer ones, first."""

    query: Annotated[str, text(MAX_QUERY_CHARS, description="What to look for.")]
    max_chunks: Annotated[
        int,
        Meta(ge=1, le=MAX_CHUNKS_PER_SEARCH, description="The most chunks answered."),
    ] = DEFAULT_CHUNKS_PER_SEARCH


class KnowledgeBase(RecordReply[KnowledgeBaseRecord], kw_only=True):
    id: str
    name: str
    description: str | None
    created_at: Time
    updated_at: Time


class KnowledgeBaseList(Reply, kw_only=True):
    knowledge_bases: list[KnowledgeBase]


class KnowledgeDocument(RecordReply[KnowledgeDocumentRecord], kw_only=True):
    """A document as uploaded (its name, type and size) and as read: ``characters`` of text
    cut into ``chunks``. The text is kept in its chunks only."""

    id: str
    knowledge_base_id: str
    name: str
    content_type: str
    size_bytes: int
    characters: int
    chunks: int
    created_at: Time


class KnowledgeChunk(RecordReply[KnowledgeChunkRecord], kw_only=True):
    """A piece of a document's text: what a search finds."""

    position: Position
    text: str


class KnowledgeDocumentDetail(KnowledgeDocument, kw_only=True):
    """A document and its text, chunk by chunk in their order."""

    content: list[KnowledgeChunk]

    @classmethod
    def with_chunks(
        cls, document: KnowledgeDocumentRecord, chunks: list[KnowledgeChunkRecord]
    ) -> KnowledgeDocumentDetail:
        return of_record(cls, document, content=[KnowledgeChunk.of(c) for c in chunks])


class KnowledgeDocumentList(Reply, kw_only=True):
    documents: list[KnowledgeDocument]


class KnowledgeSearchHit(RecordReply[KnowledgeHit], kw_only=True):
    """A chunk found: its document and place in it, its text and its relevance (``score``:
    higher is better; comparable within one search only)."""

    knowledge_base_id: str
    document_id: str
    document_name: str
    position: Position
    text: str
    score: float


class KnowledgeSearchResult(Reply, kw_only=True):
    """The chunks found, best first, and how long the search took."""

    results: list[KnowledgeSearchHit]
    took_ms: Annotated[float, Meta(ge=0, description="The search's own time, in milliseconds.")]
    by: Annotated[
        Literal["full_text", "hybrid"],
        Meta(
            description="full_text: by the query's words; hybrid: by its words and its meaning "
            "(an embeddings endpoint, the organization's or the operator's, gave the chunks "
            "and the query vectors)."
        ),
    ]


_UNREAD_OR_LIMITED = (
    "No text comes out of the document (Unreadable document), or the organization's knowledge "
    "bases are at the operator's bounds ([knowledge]: Knowledge limit reached)"
)


def _upload() -> Schema:
    """``POST /knowledge-bases/{id}/documents``: the JSON upload, or the document itself."""
    op = operation(
        "Upload a document into a knowledge base: JSON (KnowledgeDocumentUpload), or the "
        "document itself as the body, of its own Content-Type, named by the query's name. "
        "Its text is read and cut into chunks once (422 Unreadable document when none comes "
        "out of it; 422 Knowledge limit reached past the operator's bounds; 413 past "
        "[knowledge] document_bytes)",
        ("201", KnowledgeDocument),
        body=KnowledgeDocumentUpload,
        params=query_parameters(KnowledgeDocumentQuery),
        errors="400 401 404 413 415 422",
    )
    # The document itself: any bytes are one (what is no text is 422 Unreadable document).
    raw: Schema = {"schema": {"description": "The document itself (text: UTF-8)."}}
    pdf: Schema = {"schema": {"description": "The PDF itself.", "contentMediaType": PDF}}
    content = op["requestBody"]["content"]
    content.update({"text/plain": raw, "text/markdown": raw, "text/html": raw, PDF: pdf})
    op["responses"]["413"] = error_response(
        "413",
        "The document is larger than [knowledge] document_bytes (a JSON upload's body: a third "
        "more, and 4096 bytes)",
    )
    op["responses"]["415"] = error_response(
        "415", "The body is of no type a document is read as (Content-Type)"
    )
    op["responses"]["502"] = error_response(
        "502",
        "The embeddings endpoint gave the chunks no vectors (Embeddings failed): nothing was "
        "stored; send the document again",
    )
    return _limited(op)


def _limited(op: Schema) -> Schema:
    """``op``, its 422 a document no text comes out of, or the operator's bounds."""
    op["responses"]["422"] = error_response("422", _UNREAD_OR_LIMITED)
    return op


_BASE = "/knowledge-bases/{id}"
PATHS: dict[str, Schema] = {
    "/knowledge-bases": {
        "get": operation(
            "List the organization's knowledge bases", ("200", KnowledgeBaseList), errors="401"
        ),
        "post": _limited(
            operation(
                "Create a knowledge base (422 Knowledge limit reached past the operator's bound)",
                ("201", KnowledgeBase),
                body=KnowledgeBaseCreate,
                errors="400 401 413 422",
            )
        ),
    },
    _BASE: {
        "get": operation("Get a knowledge base", ("200", KnowledgeBase), errors="401 404"),
        "patch": operation(
            "Update a knowledge base's name or description",
            ("200", KnowledgeBase),
            body=KnowledgeBaseUpdate,
            errors="400 401 404 413",
        ),
        "delete": operation(
            "Delete a knowledge base with its documents (409 while an assistant names it)",
            ("204", None),
            errors="401 404 409",
        ),
    },
    f"{_BASE}/documents": {
        "get": operation(
            "List a knowledge base's documents",
            ("200", KnowledgeDocumentList),
            errors="401 404",
        ),
        "post": _upload(),
    },
    f"{_BASE}/documents/{{document_id}}": {
        "get": operation(
            "Get a document of a knowledge base, with its text chunk by chunk",
            ("200", KnowledgeDocumentDetail),
            errors="401 404",
        ),
        "delete": operation(
            "Delete a document (its chunks are no longer found)", ("204", None), errors="401 404"
        ),
    },
    f"{_BASE}/search": {
        "post": operation(
            "Search a knowledge base: the chunks that answer the query best",
            ("200", KnowledgeSearchResult),
            body=KnowledgeSearchRequest,
            errors="400 401 404 413",
        ),
    },
}
MODELS = (
    KnowledgeBaseCreate,
    KnowledgeBaseUpdate,
    KnowledgeDocumentUpload,
    KnowledgeDocumentQuery,
    KnowledgeSearchRequest,
    KnowledgeBase,
    KnowledgeBaseList,
    KnowledgeDocument,
    KnowledgeChunk,
    KnowledgeDocumentDetail,
    KnowledgeDocumentList,
    KnowledgeSearchHit,
    KnowledgeSearchResult,
)
