"""``/knowledge-bases`` (an organization's knowledge bases: create, list, get, patch, delete),
their documents (``/knowledge-bases/{id}/documents``: upload, list, get with the text chunk by
chunk, delete) and the search of one base (``/knowledge-bases/{id}/search``); docs/knowledge.md.

A document is uploaded as JSON (its ``text``, or its bytes in ``data_base64``) or as the raw
body of its own ``Content-Type``, named by the query's ``name``; reading it, cutting it into
chunks and the operator's bounds are ``knowledge/library.py``'s. A base a saved assistant
names (its ``knowledge.knowledge_base_ids``) is not deleted (409); deleting one deletes its
documents and their chunks. Another organization's base or document is the same 404 as none.
"""

from __future__ import annotations

import dataclasses
import uuid

from aiohttp import web
from msgspec import UnsetType

from voicedock.api.audit import Audited
from voicedock.api.body import JSON_TYPES, check_query_names, read_body, read_json
from voicedock.api.models.base import parse, parse_query, reply
from voicedock.api.models.knowledge import (
    PDF,
    KnowledgeBaseCreate,
    KnowledgeBaseUpdate,
    KnowledgeDocumentDetail,
    KnowledgeDocumentList,
    KnowledgeDocumentQuery,
    KnowledgeDocumentUpload,
    KnowledgeSearchHit,
    KnowledgeSearchRequest,
    KnowledgeSearchResult,
)
from voicedock.api.models.knowledge import KnowledgeBase as KnowledgeBaseReply
from voicedock.api.models.knowledge import KnowledgeDocument as KnowledgeDocumentReply
from voicedock.api.resources import (
    Caller,
    Create,
    Delete,
    Listing,
    Patch,
    Resource,
    caller_of,
    created,
    mount,
    stored,
    unreferenced,
)
from voicedock.calls.assistants.knowledge_refs import uses_knowledge_base
from voicedock.domain.knowledge import KnowledgeBase, KnowledgeDocument
from voicedock.domain.records import utcnow
from voicedock.errors import BadRequest, NotFound, PayloadTooLarge
from voicedock.knowledge.library import check_document_type
from voicedock.validation import is_token

routes = web.RouteTableDef()

DOCUMENT_NOT_FOUND = "Knowledge document not found"
# A document's name where its body does not say it: in the query for a raw body, in the JSON.
INVALID_UPLOAD = "Invalid upload"
# A JSON upload's room beyond the document itself: base64's third more, and the other fields.
JSON_OVERHEAD_BYTES = 4096
DOCUMENTS_AUDIT = Audited("knowledge_document", created="uploaded")


def _parse_new(caller: Caller, body: object) -> KnowledgeBase:
    new = parse(body, KnowledgeBaseCreate)
    return KnowledgeBase(
        id=str(uuid.uuid4()),
        organization_id=caller.organization_id,
        name=new.name,
        description=new.description,
    )


def _parse_update(_caller: Caller, base: KnowledgeBase, body: object) -> KnowledgeBase:
    given = parse(body, KnowledgeBaseUpdate)
    return dataclasses.replace(
        base,
        name=base.name if isinstance(given.name, UnsetType) else given.name,
        description=(
            base.description if isinstance(given.description, UnsetType) else given.description
        ),
        updated_at=utcnow(),
    )


async def _add(caller: Caller, base: KnowledgeBase) -> KnowledgeBase:
    """The new base, within the operator's bound of bases (422 past it), recorded with its
    audit event."""
    await caller.service.knowledge.add_base(base, caller.record)
    return base


KNOWLEDGE_BASES: Resource[KnowledgeBase] = Resource(
    path="/knowledge-bases",
    noun="knowledge base",
    lookup=lambda c, base_id: c.store.get_knowledge_base(c.organization_id, base_id),
    serialize=KnowledgeBaseReply.of,
    list=Listing(run=lambda c: c.store.list_knowledge_bases(c.organization_id)),
    create=Create(parse=_parse_new, run=_add, reply=created(KnowledgeBaseReply.of)),
    patch=Patch(parse=_parse_update, run=stored(lambda tx, b: tx.update_knowledge_base(b))),
    delete=Delete(
        run=unreferenced(
            lambda b, config: uses_knowledge_base(config, b.id),
            lambda _base: "the knowledge base is searched by",
            lambda tx, b: tx.delete_knowledge_base(b.organization_id, b.id),
            "remove it from their knowledge.knowledge_base_ids first",
        )
    ),
    audit=Audited("knowledge_base"),
)
RESOURCES = (KNOWLEDGE_BASES,)
mount(routes, *RESOURCES)

_DOCUMENTS = f"{KNOWLEDGE_BASES.item_path}/documents"
_DOCUMENT = f"{_DOCUMENTS}/{{document_id}}"


def _document_not_found() -> NotFound:
    return NotFound("no knowledge document with this document_id", error=DOCUMENT_NOT_FOUND)


async def _document(caller: Caller, base: KnowledgeBase, request: web.Request) -> KnowledgeDocument:
    """The document the path names, of ``base`` (404 when the base has none)."""
    document_id = request.match_info["document_id"]
    if not is_token(document_id):
        raise _document_not_found()
    document = await caller.store.get_knowledge_document(caller.organization_id, document_id)
    if document is None or document.knowledge_base_id != base.id:
        raise _document_not_found()
    return document


@routes.post(_DOCUMENTS)
async def upload_document(request: web.Request) -> web.Response:
    """A document into the base: JSON (``KnowledgeDocumentUpload``) or the raw body of one of
    the document types, named by ``?name=``; ``201`` with the document as read."""
    caller = caller_of(request).auditing(DOCUMENTS_AUDIT, "created")
    base = await KNOWLEDGE_BASES.fetch(request)
    as_json = request.headers.get("Content-Type") is None or request.content_type in JSON_TYPES
    content_type = request.content_type.lower()
    if not as_json:
        check_document_type(content_type)  # 415 for a type no document is read as
    check_query_names(request.query, frozenset({"name"}))
    named = parse_query(request.query, KnowledgeDocumentQuery).name
    library = caller.service.knowledge
    most = library.settings.document_bytes
    if as_json:
        if not isinstance(named, UnsetType):
            raise BadRequest(
                "name: a JSON upload names its document in the body, not in the query",
                error=INVALID_UPLOAD,
            )
        body = await read_json(request, _json_bound(most))
        name, content_type, data = _uploaded(parse(body, KnowledgeDocumentUpload), most)
    else:
        if isinstance(named, UnsetType):
            raise BadRequest(
                "name: a document sent as the body is named in the query (?name=...)",
                error=INVALID_UPLOAD,
            )
        if request.content_length is not None and request.content_length > most:
            raise _too_large(most)
        try:
            data = await read_body(request, most)
        except PayloadTooLarge:
            raise _too_large(most) from None
        name = named
    document = await library.add_document(base, name, content_type, data, caller.record)
    return reply(KnowledgeDocumentReply.of(document), 201)


def _json_bound(most: int) -> int:
    """The bytes a JSON upload of a document of at most ``most`` bytes may take."""
    return most * 4 // 3 + JSON_OVERHEAD_BYTES


def _too_large(most: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"a document is at most {most} bytes ([knowledge] document_bytes)")


def _uploaded(upload: KnowledgeDocumentUpload, most: int) -> tuple[str, str, bytes]:
    """A JSON upload's name, type and bytes: ``text`` or ``data_base64``, one of them (400);
    a PDF's in ``data_base64`` (400); at most ``most`` bytes (413)."""
    has_text = not isinstance(upload.text, UnsetType)
    if has_text == (not isinstance(upload.data_base64, UnsetType)):
        raise BadRequest("body: send text or data_base64 (one of them)")
    if isinstance(upload.text, str):
        if upload.content_type == PDF:
            raise BadRequest(f"text: a document of type {PDF} is sent as data_base64")
        # A lone surrogate JSON escaped is no UTF-8: the document is refused as unreadable.
        data = upload.text.encode("utf-8", "surrogatepass")
    else:
        assert isinstance(upload.data_base64, bytes)
        data = upload.data_base64
    if len(data) > most:
        raise _too_large(most)
    return upload.name, upload.content_type, data


@routes.get(_DOCUMENTS)
async def list_documents(request: web.Request) -> web.Response:
    """The base's documents, oldest first."""
    caller = caller_of(request)
    base = await KNOWLEDGE_BASES.fetch(request)
    documents = await caller.store.list_knowledge_documents(caller.organization_id, base.id)
    return reply(KnowledgeDocumentList(documents=[KnowledgeDocumentReply.of(d) for d in documents]))


@routes.get(_DOCUMENT)
async def get_document(request: web.Request) -> web.Response:
    """A document of the base, with its chunks in their order."""
    caller = caller_of(request)
    base = await KNOWLEDGE_BASES.fetch(request)
    document = await _document(caller, base, request)
    chunks = await caller.store.knowledge_chunks(caller.organization_id, document.id)
    return reply(KnowledgeDocumentDetail.with_chunks(document, chunks))


@routes.delete(_DOCUMENT)
async def delete_document(request: web.Request) -> web.Response:
    """The document and its chunks (no search finds them any more); ``204``."""
    caller = caller_of(request).auditing(DOCUMENTS_AUDIT, "deleted")
    base = await KNOWLEDGE_BASES.fetch(request)
    document = await _document(caller, base, request)
    if not await caller.service.knowledge.delete_document(document, caller.record):
        raise _document_not_found()  # deleted meanwhile
    return web.Response(status=204)


@routes.post(f"{KNOWLEDGE_BASES.item_path}/search")
async def search_base(request: web.Request) -> web.Response:
    """The base's chunks that answer the query best, best first, and the search's time."""
    caller = caller_of(request)
    base = await KNOWLEDGE_BASES.fetch(request)
    body = await read_json(request, caller.service.settings.server.max_body_bytes)
    asked = parse(body, KnowledgeSearchRequest)
    searches = caller.service.knowledge_search
    found = await searches.search(caller.organization_id, [base.id], asked.query, asked.max_chunks)
    results = [KnowledgeSearchHit.of(hit) for hit in found.hits]
    took_ms = round(found.took_ms, 3)
    return reply(KnowledgeSearchResult(results=results, took_ms=took_ms, by=found.by))


__all__ = ["KNOWLEDGE_BASES", "RESOURCES", "routes"]
