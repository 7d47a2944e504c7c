"""Knowledge bases over REST (``/knowledge-bases``): a base made, renamed and listed; documents
uploaded as JSON text, as a raw body and as base64 (a PDF), read back chunk by chunk and found
by the base's search (SQLite's FTS5, PostgreSQL's full-text search); a document deleted is no
longer found; another organization sees none of it; the operator's bounds, the bodies refused,
and a base a saved assistant names kept until none does."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest

from api.conftest import Api, serving
from api.contract import conforms, statuses
from fakes.world import ACME, make_settings, org_id
from knowledge.test_documents import pdf_of
from voicedock.api.api_keys import issue_api_key
from voicedock.domain.records import KeyScope

pytestmark = pytest.mark.unit

FAQ = """# Clinic FAQ

## Parking

Free parking is behind the building, entrance on Mill Lane.

## Vaccinations

Flu vaccinations are given in October and November; book them at the front desk.
"""
HOURS = (
    "<html><head><title>Hours</title><style>p { color: red }</style></head><body>"
    "<h1>Opening hours</h1><p>The clinic is open Monday to Friday, 8:00 to 18:00, and on "
    "Saturday mornings.</p><script>var parking = 1;</script></body></html>"
)
PRESCRIPTIONS = "Repeat prescriptions take two working days."
PDF = pdf_of(PRESCRIPTIONS)


async def new_base(api: Api, name: str = "Clinic", key: str | None = None) -> str:
    resp = await api.client.post("/knowledge-bases", json={"name": name}, headers=api.auth(key))
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def upload(api: Api, base_id: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = await api.client.post(
        f"/knowledge-bases/{base_id}/documents", json=body, headers=api.auth()
    )
    assert resp.status == 201, await resp.text()
    document: dict[str, Any] = await resp.json()
    conforms(document, "KnowledgeDocument")
    return document


async def upload_raw(
    api: Api, base_id: str, data: bytes, content_type: str, name: str | None = "page"
) -> Any:
    query = "" if name is None else f"?name={name}"
    return await api.client.post(
        f"/knowledge-bases/{base_id}/documents{query}",
        data=data,
        headers={**api.auth(), "Content-Type": content_type},
    )


async def found(api: Api, base_id: str, query: str, **asked: Any) -> list[dict[str, Any]]:
    resp = await api.client.post(
        f"/knowledge-bases/{base_id}/search", json={"query": query, **asked}, headers=api.auth()
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    conforms(body, "KnowledgeSearchResult")
    assert body["took_ms"] >= 0
    results: list[dict[str, Any]] = body["results"]
    return results


async def refusal(resp: Any, status: int) -> dict[str, str]:
    assert resp.status == status, await resp.text()
    body: dict[str, str] = await resp.json()
    conforms(body, "Error")
    return body


async def test_a_base_holds_documents_of_each_kind_and_finds_the_right_chunk(api: Api) -> None:
    h = api.auth()
    resp = await api.client.post(
        "/knowledge-bases",
        json={"name": "Clinic", "description": "What patients ask the front desk."},
        headers=h,
    )
    assert resp.status == 201, await resp.text()
    base = await resp.json()
    conforms(base, "KnowledgeBase")
    assert base["name"] == "Clinic"
    assert base["description"] == "What patients ask the front desk."
    assert base["created_at"].endswith("Z")
    base_id = base["id"]
    listed = await (await api.client.get("/knowledge-bases", headers=h)).json()
    conforms(listed, "KnowledgeBaseList")
    assert [b["id"] for b in listed["knowledge_bases"]] == [base_id]
    renamed = await api.client.patch(
        f"/knowledge-bases/{base_id}", json={"name": "Riverside Clinic"}, headers=h
    )
    assert renamed.status == 200, await renamed.text()
    assert (await renamed.json())["description"] == base["description"]  # kept: not sent
    cleared = await api.client.patch(
        f"/knowledge-bases/{base_id}", json={"description": None}, headers=h
    )
    got = await (await api.client.get(f"/knowledge-bases/{base_id}", headers=h)).json()
    assert got == await cleared.json()
    assert (got["name"], got["description"]) == ("Riverside Clinic", None)
    conforms(got, "KnowledgeBase")

    faq = await upload(
        api, base_id, {"name": "faq.md", "content_type": "text/markdown", "text": FAQ}
    )
    assert faq["knowledge_base_id"] == base_id
    assert (faq["content_type"], faq["size_bytes"]) == ("text/markdown", len(FAQ.encode()))
    assert faq["chunks"] == 2
    raw = await upload_raw(api, base_id, HOURS.encode(), "text/html; charset=utf-8", "hours.html")
    assert raw.status == 201, await raw.text()
    hours = await raw.json()
    assert (hours["name"], hours["content_type"], hours["chunks"]) == ("hours.html", "text/html", 1)
    encoded = base64.b64encode(PDF).decode()
    pdf = await upload(
        api,
        base_id,
        {"name": "prescriptions.pdf", "content_type": "application/pdf", "data_base64": encoded},
    )
    assert (pdf["size_bytes"], pdf["characters"]) == (len(PDF), len(PRESCRIPTIONS))

    documents = await (
        await api.client.get(f"/knowledge-bases/{base_id}/documents", headers=h)
    ).json()
    conforms(documents, "KnowledgeDocumentList")
    assert [d["id"] for d in documents["documents"]] == [faq["id"], hours["id"], pdf["id"]]
    detail = await api.client.get(f"/knowledge-bases/{base_id}/documents/{pdf['id']}", headers=h)
    assert detail.status == 200, await detail.text()
    read = await detail.json()
    conforms(read, "KnowledgeDocumentDetail")
    assert read == {**pdf, "content": [{"position": 0, "text": PRESCRIPTIONS}]}
    page = await (
        await api.client.get(f"/knowledge-bases/{base_id}/documents/{hours['id']}", headers=h)
    ).json()
    assert [c["text"] for c in page["content"]] == [
        "Opening hours\nThe clinic is open Monday to Friday, 8:00 to 18:00, and on Saturday "
        "mornings."
    ]  # the page's title, style and script are not its text
    chunks = (
        await (
            await api.client.get(f"/knowledge-bases/{base_id}/documents/{faq['id']}", headers=h)
        ).json()
    )["content"]
    assert [c["position"] for c in chunks] == [0, 1]
    assert chunks[1]["text"].startswith("Vaccinations\nFlu vaccinations")

    first = (await found(api, base_id, "How long do repeat prescriptions take?"))[0]
    assert (first["document_id"], first["document_name"]) == (pdf["id"], "prescriptions.pdf")
    assert (first["knowledge_base_id"], first["position"], first["text"]) == (
        base_id,
        0,
        PRESCRIPTIONS,
    )
    parking = await found(api, base_id, "Where can I park my car?", max_chunks=1)
    assert [(r["document_id"], r["position"]) for r in parking] == [(faq["id"], 0)]
    saturday = await found(api, base_id, "open on saturday")
    assert saturday[0]["document_id"] == hours["id"]
    assert await found(api, base_id, "the and of") == []  # no word worth looking up

    gone = await api.client.delete(f"/knowledge-bases/{base_id}/documents/{pdf['id']}", headers=h)
    assert gone.status == 204
    assert all(r["document_id"] != pdf["id"] for r in await found(api, base_id, "prescriptions"))
    missing = await api.client.get(f"/knowledge-bases/{base_id}/documents/{pdf['id']}", headers=h)
    assert (await refusal(missing, 404))["error"] == "Knowledge document not found"
    again = await api.client.delete(f"/knowledge-bases/{base_id}/documents/{pdf['id']}", headers=h)
    assert (await refusal(again, 404))["error"] == "Knowledge document not found"
    left = await (await api.client.get(f"/knowledge-bases/{base_id}/documents", headers=h)).json()
    assert [d["id"] for d in left["documents"]] == [faq["id"], hours["id"]]


async def test_the_changes_are_in_the_audit_trail(api: Api) -> None:
    admin, _ = await issue_api_key(api.service.store, ACME, "admin", KeyScope.ADMIN)
    base_id = await new_base(api)
    await api.client.patch(f"/knowledge-bases/{base_id}", json={"name": "B"}, headers=api.auth())
    text = {"name": "a.txt", "content_type": "text/plain", "text": "Parking is free."}
    document_id = (await upload(api, base_id, text))["id"]
    path = f"/knowledge-bases/{base_id}/documents/{document_id}"
    assert (await api.client.delete(path, headers=api.auth())).status == 204
    assert (await api.client.delete(f"/knowledge-bases/{base_id}", headers=api.auth())).status == (
        204
    )
    resp = await api.client.get("/audit-events", headers=api.auth(admin))
    assert resp.status == 200, await resp.text()
    trail = [(e["action"], e["resource_id"]) for e in (await resp.json())["audit_events"]]
    assert trail[::-1] == [
        ("knowledge_base.created", base_id),
        ("knowledge_base.updated", base_id),
        ("knowledge_document.uploaded", document_id),
        ("knowledge_document.deleted", document_id),
        ("knowledge_base.deleted", base_id),
    ]


async def test_another_organization_gets_404_for_everything(api: Api) -> None:
    base_id = await new_base(api)
    text = {"name": "a.txt", "content_type": "text/plain", "text": "Parking is free."}
    document_id = (await upload(api, base_id, text))["id"]
    theirs = api.auth(api.globex_key)
    base, document = f"/knowledge-bases/{base_id}", f"/knowledge-bases/{base_id}/documents"
    asked: list[tuple[str, str, Any]] = [
        ("GET", base, None),
        ("PATCH", base, {"name": "Mine"}),
        ("DELETE", base, None),
        ("GET", document, None),
        ("POST", document, text),
        ("GET", f"{document}/{document_id}", None),
        ("DELETE", f"{document}/{document_id}", None),
        ("POST", f"{base}/search", {"query": "parking"}),
    ]
    for method, path, body in asked:
        resp = await api.client.request(method, path, json=body, headers=theirs)
        assert (await refusal(resp, 404))["error"] == "Knowledge base not found", (method, path)
    listed = await (await api.client.get("/knowledge-bases", headers=theirs)).json()
    assert listed == {"knowledge_bases": []}
    # Their own base does not reach this one's documents either.
    their_base = await new_base(api, "Globex", api.globex_key)
    resp = await api.client.get(
        f"/knowledge-bases/{their_base}/documents/{document_id}", headers=theirs
    )
    assert (await refusal(resp, 404))["error"] == "Knowledge document not found"
    # Nor does another base of the same organization; nor an id that is no id.
    other = await new_base(api, "Other")
    for path in (f"/knowledge-bases/{other}/documents/{document_id}", f"{document}/a%20b"):
        resp = await api.client.get(path, headers=api.auth())
        assert (await refusal(resp, 404))["error"] == "Knowledge document not found"
    assert len(await found(api, base_id, "parking")) == 1  # all still there


async def test_a_read_only_key_reads_and_changes_nothing(api: Api) -> None:
    base_id = await new_base(api)
    reader, _ = await issue_api_key(api.service.store, ACME, "reader", KeyScope.READ_ONLY)
    h = api.auth(reader)
    assert (await api.client.get(f"/knowledge-bases/{base_id}", headers=h)).status == 200
    assert (await api.client.get(f"/knowledge-bases/{base_id}/documents", headers=h)).status == 200
    for method, path, body in (
        ("POST", "/knowledge-bases", {"name": "X"}),
        ("PATCH", f"/knowledge-bases/{base_id}", {"name": "X"}),
        ("DELETE", f"/knowledge-bases/{base_id}", None),
        ("POST", f"/knowledge-bases/{base_id}/documents", {"name": "a", "text": "b"}),
    ):
        resp = await api.client.request(method, path, json=body, headers=h)
        assert (await refusal(resp, 403))["error"] == "Forbidden", (method, path)


@pytest.fixture
async def bounded(database_url: str) -> AsyncIterator[Api]:
    """The app with ``[knowledge]`` tiny: one base, documents of at most 2048 bytes."""
    settings = make_settings(database_url)
    settings.knowledge.bases_per_organization = 1
    settings.knowledge.document_bytes = 2048
    async with serving(settings) as running:
        yield running


async def test_the_operators_bounds(bounded: Api) -> None:
    api = bounded
    base_id = await new_base(api)
    second = await api.client.post("/knowledge-bases", json={"name": "Two"}, headers=api.auth())
    body = await refusal(second, 422)
    assert body["error"] == "Knowledge limit reached"
    assert "at most 1 knowledge bases" in body["message"]
    assert 422 in statuses("/knowledge-bases", "post")
    await new_base(api, "Theirs", api.globex_key)  # a bound of each organization

    at_most = "x " * 1024  # 2048 bytes
    assert (await upload_raw(api, base_id, at_most.encode(), "text/plain")).status == 201
    too_large = await upload_raw(api, base_id, (at_most + "x").encode(), "text/plain")
    assert "document_bytes" in (await refusal(too_large, 413))["message"]
    as_text = {"name": "big.txt", "content_type": "text/plain", "text": at_most + "x"}
    resp = await api.client.post(
        f"/knowledge-bases/{base_id}/documents", json=as_text, headers=api.auth()
    )
    assert (await refusal(resp, 413))["error"] == "Payload too large"
    encoded = base64.b64encode(b"x" * 2049).decode()
    as_data = {"name": "big.txt", "content_type": "text/plain", "data_base64": encoded}
    resp = await api.client.post(
        f"/knowledge-bases/{base_id}/documents", json=as_data, headers=api.auth()
    )
    assert (await refusal(resp, 413))["error"] == "Payload too large"
    # A JSON body past the document's bound in base64 (a third more) and 4096 bytes.
    padded = {**as_text, "text": "x" * (2048 * 4 // 3 + 4096)}
    resp = await api.client.post(
        f"/knowledge-bases/{base_id}/documents", json=padded, headers=api.auth()
    )
    assert (await refusal(resp, 413))["error"] == "Payload too large"
    assert 413 in statuses("/knowledge-bases/{id}/documents", "post")
    listed = await (
        await api.client.get(f"/knowledge-bases/{base_id}/documents", headers=api.auth())
    ).json()
    assert len(listed["documents"]) == 1


async def test_documents_of_no_type_read_or_no_text_are_refused(api: Api) -> None:
    base_id = await new_base(api)
    png = await upload_raw(api, base_id, b"\x89PNG\r\n\x1a\n", "image/png")
    body = await refusal(png, 415)
    assert body["error"] == "Unsupported media type"
    assert "image/png" in body["message"]
    assert 415 in statuses("/knowledge-bases/{id}/documents", "post")
    latin1 = await upload_raw(api, base_id, "Caf\u00e9 au lait".encode("latin-1"), "text/plain")
    body = await refusal(latin1, 422)
    assert body == {
        "error": "Unreadable document",
        "message": "the document could not be read: the text is not UTF-8",
    }
    blank = {"name": "blank.md", "content_type": "text/markdown", "text": "# \n\n---\n"}
    resp = await api.client.post(
        f"/knowledge-bases/{base_id}/documents", json=blank, headers=api.auth()
    )
    assert (await refusal(resp, 422))["error"] == "Unreadable document"
    not_pdf = {
        "name": "x.pdf",
        "content_type": "application/pdf",
        "data_base64": base64.b64encode(b"%PDF-1.4\nnot really").decode(),
    }
    resp = await api.client.post(
        f"/knowledge-bases/{base_id}/documents", json=not_pdf, headers=api.auth()
    )
    assert (await refusal(resp, 422))["message"] == (
        "the document could not be read: the PDF could not be read"
    )
    listed = await (
        await api.client.get(f"/knowledge-bases/{base_id}/documents", headers=api.auth())
    ).json()
    assert listed == {"documents": []}


TEXT = {"name": "a.txt", "content_type": "text/plain", "text": "Parking is free."}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({**TEXT, "data_base64": "UGFya2luZw=="}, "body: send text or data_base64"),
        ({"name": "a.txt", "content_type": "text/plain"}, "body: send text or data_base64"),
        ({**TEXT, "content_type": "application/pdf"}, "text: a document of type application/pdf"),
        ({**TEXT, "text": None}, "text"),
        ({"name": "a", "content_type": "text/plain", "data_base64": "UGFya2luZw"}, "data_base64"),
        ({"name": "a", "content_type": "text/plain", "data_base64": "a b="}, "data_base64"),
        ({**TEXT, "content_type": "image/png"}, "content_type"),
        ({**TEXT, "name": "x" * 201}, "name"),
        ({**TEXT, "name": " "}, "name"),
        ({"content_type": "text/plain", "text": "a"}, "name"),
        ({**TEXT, "url": "https://example.com"}, "url"),
    ],
)
async def test_a_bad_upload_is_a_400_naming_the_field(
    api: Api, body: dict[str, Any], named: str
) -> None:
    base_id = await new_base(api)
    resp = await api.client.post(
        f"/knowledge-bases/{base_id}/documents", json=body, headers=api.auth()
    )
    refused = await refusal(resp, 400)
    assert refused["error"] == "Bad request"
    assert named in refused["message"]


async def test_a_documents_name_goes_with_its_body(api: Api) -> None:
    """A raw body is named in the query, a JSON upload in the body: either elsewhere is a 400
    of its own title (the document cannot say it)."""
    base_id = await new_base(api)
    unnamed = await upload_raw(api, base_id, b"Parking is free.", "text/plain", name=None)
    body = await refusal(unnamed, 400)
    assert body["error"] == "Invalid upload"
    assert body["message"].startswith("name: ")
    resp = await api.client.post(
        f"/knowledge-bases/{base_id}/documents?name=a.txt", json=TEXT, headers=api.auth()
    )
    assert (await refusal(resp, 400))["error"] == "Invalid upload"
    long_name = await upload_raw(api, base_id, b"Parking is free.", "text/plain", "x" * 201)
    assert "name" in (await refusal(long_name, 400))["message"]
    resp = await api.client.post(
        f"/knowledge-bases/{base_id}/documents?title=a",
        data=b"Parking is free.",
        headers={**api.auth(), "Content-Type": "text/plain"},
    )
    assert "title" in (await refusal(resp, 400))["message"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({}, "query"),
        ({"query": ""}, "query"),
        ({"query": "x" * 501}, "query"),
        ({"query": "parking", "max_chunks": 0}, "max_chunks"),
        ({"query": "parking", "max_chunks": 11}, "max_chunks"),
        ({"query": "parking", "limit": 3}, "limit"),
    ],
)
async def test_a_bad_search_is_a_400_naming_the_field(
    api: Api, body: dict[str, Any], named: str
) -> None:
    base_id = await new_base(api)
    resp = await api.client.post(
        f"/knowledge-bases/{base_id}/search", json=body, headers=api.auth()
    )
    assert named in (await refusal(resp, 400))["message"]


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": "x" * 201}, {"name": "A", "description": "x" * 1001}, {"id": "x"}],
)
async def test_a_bad_base_is_a_400(api: Api, body: dict[str, Any]) -> None:
    resp = await api.client.post("/knowledge-bases", json=body, headers=api.auth())
    assert (await refusal(resp, 400))["error"] == "Bad request"


async def test_a_base_an_assistant_names_is_kept_until_none_does(api: Api) -> None:
    h = api.auth()
    base_id = await new_base(api)
    text = {"name": "a.txt", "content_type": "text/plain", "text": "Parking is free."}
    document_id = (await upload(api, base_id, text))["id"]
    assistant = {"name": "Front desk", "knowledge": {"knowledge_base_ids": [base_id]}}
    resp = await api.client.post("/assistants", json=assistant, headers=h)
    assert resp.status == 201, await resp.text()
    assistant_id = (await resp.json())["id"]

    refused = await api.client.delete(f"/knowledge-bases/{base_id}", headers=h)
    assert await refusal(refused, 409) == {
        "error": "Conflict",
        "message": "the knowledge base is searched by assistant(s): Front desk; "
        "remove it from their knowledge.knowledge_base_ids first",
    }
    assert 409 in statuses("/knowledge-bases/{id}", "delete")
    assert len(await found(api, base_id, "parking")) == 1

    assert (await api.client.delete(f"/assistants/{assistant_id}", headers=h)).status == 204
    assert (await api.client.delete(f"/knowledge-bases/{base_id}", headers=h)).status == 204
    resp = await api.client.get(f"/knowledge-bases/{base_id}", headers=h)
    assert (await refusal(resp, 404))["error"] == "Knowledge base not found"
    # Its documents and their chunks went with it.
    store, acme = api.service.store, org_id(ACME)
    assert await store.get_knowledge_document(acme, document_id) is None
    assert await store.knowledge_chunks(acme, document_id) == []
    use = await store.knowledge_use(acme)
    assert (use.bases, use.documents, use.chunks, use.bytes) == (0, 0, 0, 0)


async def test_a_base_listed_twice_is_refused_by_a_title_of_its_own(api: Api) -> None:
    """The schema cannot state that each id is listed once (``uniqueItems`` is not in the
    document), so the refusal of a schema-valid request names its rule by a title of its own,
    as a language listed twice does (``Duplicate language``)."""
    h = api.auth()
    base_id = await new_base(api)
    twice = {"knowledge_base_ids": [base_id, base_id]}
    for path in ("/assistants", "/agents"):
        resp = await api.client.post(path, json={"name": "Desk", "knowledge": twice}, headers=h)
        refused = await refusal(resp, 400)
        assert refused["message"].endswith("must list each knowledge base once"), refused
        assert refused["error"] == "Duplicate knowledge base", (path, refused)
    listed = await (await api.client.get("/assistants", headers=h)).json()
    assert "Desk" not in [a["name"] for a in listed["assistants"]]
