"""An organization's own embeddings endpoint (``knowledge_embeddings`` on ``PATCH
/organization``), used for its knowledge bases instead of the operator's: its chunks and
queries go to its endpoint with its own provider key as the bearer token, the operator's
endpoint hears nothing of them; ``GET /organization`` shows the key's name, never the key; a
URL, a key reference or a mode the operator does not allow is refused as it is set; a key that
no longer exists leaves its documents to full-text search; ``null`` gives the operator's back.
Over REST, on SQLite and PostgreSQL, two local stand-ins speaking the OpenAI wire format."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from api.conftest import Api, serving
from api.contract import conforms
from api.test_knowledge_api import new_base, upload
from api.test_knowledge_embeddings_api import FAQ, QUESTION
from api.test_organization_api import admin
from fakes.embeddings_standin import EmbeddingsStandIn
from fakes.world import ACME, make_settings, org_id

pytestmark = pytest.mark.unit

SECRET = "sk-acme-embeddings-0123456789wxyz"
OPERATOR_KEY = "sk-embeddings-operator"
KEY = {"name": "acme-embed", "provider": "openai", "api_key": SECRET}
DOCUMENT = {"name": "faq.md", "content_type": "text/markdown", "text": FAQ}


@pytest.fixture
async def operator() -> AsyncIterator[EmbeddingsStandIn]:
    async with EmbeddingsStandIn() as running:
        yield running


@pytest.fixture
async def own() -> AsyncIterator[EmbeddingsStandIn]:
    """The organization's endpoint (another vector space: its dimension differs)."""
    async with EmbeddingsStandIn(dims=48) as running:
        yield running


def _settings(database_url: str, operator: EmbeddingsStandIn, *, loopback: bool = True) -> Any:
    settings = make_settings(database_url)  # a [byok] key: organizations store provider keys
    settings.knowledge.embeddings.url = operator.url
    settings.knowledge.embeddings.model = "operator-embed"
    settings.knowledge.embeddings.api_key = OPERATOR_KEY
    settings.egress.allow_loopback = loopback  # the organization's stand-in is on loopback
    return settings


@pytest.fixture
async def api(database_url: str, operator: EmbeddingsStandIn) -> AsyncIterator[Api]:
    async with serving(_settings(database_url, operator)) as running:
        yield running


async def _store_key(api: Api) -> dict[str, Any]:
    resp = await api.client.post("/provider-keys", json=KEY, headers=api.auth())
    assert resp.status == 201, await resp.text()
    created: dict[str, Any] = await resp.json()
    return created


def _setting(own: EmbeddingsStandIn, **more: Any) -> dict[str, Any]:
    return {"url": own.url, "model": "acme-embed-48", "api_key_ref": "acme-embed", **more}


async def _patch(api: Api, body: Any) -> tuple[int, dict[str, Any]]:
    resp = await api.client.patch("/organization", json=body, headers=await admin(api))
    text = await resp.text()
    assert SECRET not in text
    answer: dict[str, Any] = await resp.json()
    return resp.status, answer


async def _search(api: Api, base_id: str, query: str) -> dict[str, Any]:
    resp = await api.client.post(
        f"/knowledge-bases/{base_id}/search",
        json={"query": query, "max_chunks": 2},
        headers=api.auth(),
    )
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_the_organizations_endpoint_embeds_its_documents_and_queries_with_its_key(
    api: Api, operator: EmbeddingsStandIn, own: EmbeddingsStandIn
) -> None:
    await _store_key(api)
    status, answer = await _patch(api, {"knowledge_embeddings": _setting(own)})
    assert status == 200, answer
    conforms(answer, "Organization")
    assert answer["knowledge_embeddings"] == _setting(own)

    resp = await api.client.get("/organization", headers=api.auth())  # any key reads it
    assert resp.status == 200
    assert SECRET not in await resp.text()
    read = await resp.json()
    conforms(read, "Organization")
    assert read["knowledge_embeddings"] == _setting(own)  # the key's name only

    base_id = await new_base(api)
    uploaded = await upload(api, base_id, DOCUMENT)
    embedded = [text for request in own.requests for text in request.inputs]
    assert len(embedded) == uploaded["chunks"]
    assert {r.authorization for r in own.requests} == {f"Bearer {SECRET}"}
    assert {r.model for r in own.requests} == {"acme-embed-48"}

    body = await _search(api, base_id, QUESTION)
    assert body["by"] == "hybrid"
    assert "Repeat prescriptions" in body["results"][0]["text"]
    assert own.requests[-1].inputs == [QUESTION]
    assert own.requests[-1].authorization == f"Bearer {SECRET}"
    assert operator.requests == []  # the operator's endpoint heard nothing of it

    stored = await api.service.store.get_organization(org_id(ACME))
    assert stored is not None
    assert stored.knowledge_embeddings is not None
    assert stored.knowledge_embeddings.api_key_ref == "acme-embed"


async def test_null_gives_the_operators_endpoint_back(
    api: Api, operator: EmbeddingsStandIn, own: EmbeddingsStandIn
) -> None:
    await _store_key(api)
    status, _ = await _patch(api, {"knowledge_embeddings": _setting(own)})
    assert status == 200
    status, _ = await _patch(api, {"display_name": "Acme"})  # left out: kept
    assert status == 200
    read = await (await api.client.get("/organization", headers=api.auth())).json()
    assert read["knowledge_embeddings"] == _setting(own)

    status, answer = await _patch(api, {"knowledge_embeddings": None})
    assert status == 200, answer
    assert answer["knowledge_embeddings"] is None
    base_id = await new_base(api)
    await upload(api, base_id, DOCUMENT)
    body = await _search(api, base_id, QUESTION)
    assert body["by"] == "hybrid"
    assert own.requests == []
    assert operator.requests
    assert {r.authorization for r in operator.requests} == {f"Bearer {OPERATOR_KEY}"}
    assert operator.requests[-1].inputs == [QUESTION]


async def test_an_endpoint_without_a_key_sends_no_token(
    api: Api, operator: EmbeddingsStandIn, own: EmbeddingsStandIn
) -> None:
    setting = {"url": own.url + "/", "model": "acme-embed-48"}
    status, answer = await _patch(api, {"knowledge_embeddings": setting})
    assert status == 200, answer
    assert answer["knowledge_embeddings"] == {**setting, "api_key_ref": None}
    await upload(api, await new_base(api), DOCUMENT)
    assert own.requests
    assert {r.authorization for r in own.requests} == {None}
    assert operator.requests == []


async def test_a_key_that_no_longer_exists_leaves_its_documents_to_the_words(
    api: Api, operator: EmbeddingsStandIn, own: EmbeddingsStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    key = await _store_key(api)
    status, _ = await _patch(api, {"knowledge_embeddings": _setting(own)})
    assert status == 200
    gone = await api.client.delete(f"/provider-keys/{key['id']}", headers=api.auth())
    assert gone.status == 204

    base_id = await new_base(api)
    with caplog.at_level(logging.WARNING, logger="voicedock.knowledge"):
        await upload(api, base_id, DOCUMENT)  # stored, with no vectors
        body = await _search(api, base_id, "When is the clinic open?")
    assert body["by"] == "full_text"
    assert "Monday to Friday" in body["results"][0]["text"]
    assert own.requests == []
    assert operator.requests == []
    warned = [r.getMessage() for r in caplog.records if "api_key_ref" in r.getMessage()]
    assert warned
    assert all("'acme-embed'" in m and SECRET not in m for m in warned)


@pytest.mark.parametrize(
    ("setting", "names"),
    [
        ({"url": "ftp://files.example/v1", "model": "m"}, "url"),
        ({"url": "https://user:pw@embed.example/v1", "model": "m"}, "credentials"),
        ({"url": "https://embed.example/v1?model=x", "model": "m"}, "query"),
        ({"url": "https://embed.example/" + "a" * 500, "model": "m"}, "url"),
        ({"url": "https://embed.example/v1"}, "model"),
        ({"url": "https://embed.example/v1", "model": ""}, "model"),
        ({"url": "https://embed.example/v1", "model": "x" * 201}, "model"),
        ({"url": "https://embed.example/v1", "model": "m", "api_key": SECRET}, "api_key"),
        ({"url": "https://embed.example/v1", "model": "m", "api_key_ref": "no spaces"}, "ref"),
        ({"model": "m"}, "url"),
        ("https://embed.example/v1", "knowledge_embeddings"),
    ],
)
async def test_bad_settings_are_400_naming_the_field(api: Api, setting: Any, names: str) -> None:
    status, answer = await _patch(api, {"knowledge_embeddings": setting})
    assert status == 400, answer
    assert names in answer["message"]
    assert SECRET not in answer["message"]
    stored = await api.service.store.get_organization(org_id(ACME))
    assert stored is not None
    assert stored.knowledge_embeddings is None


async def test_a_url_the_egress_policy_refuses_is_400_url_refused(api: Api) -> None:
    metadata = {"url": "http://169.254.169.254/v1", "model": "m"}
    status, answer = await _patch(api, {"knowledge_embeddings": metadata})
    assert status == 400, answer
    assert answer["error"] == "URL refused"
    assert "knowledge_embeddings.url" in answer["message"]


async def test_loopback_is_refused_where_the_policy_does_not_allow_it(
    database_url: str, operator: EmbeddingsStandIn, own: EmbeddingsStandIn
) -> None:
    settings = _settings(database_url, operator, loopback=False)
    async with serving(settings) as api:
        status, answer = await _patch(api, {"knowledge_embeddings": _setting(own)})
        assert status == 400, answer
        assert answer["error"] == "URL refused"
        stored = await api.service.store.get_organization(org_id(ACME))
        assert stored is not None
        assert stored.knowledge_embeddings is None


async def test_a_reference_to_no_provider_key_is_422(api: Api, own: EmbeddingsStandIn) -> None:
    status, answer = await _patch(api, {"knowledge_embeddings": _setting(own)})
    assert status == 422, answer
    assert (
        "knowledge_embeddings.api_key_ref: no provider key named 'acme-embed'"
        in (answer["message"])
    )
    # another organization's key of that name is none of its own
    resp = await api.client.post("/provider-keys", json=KEY, headers=api.auth(api.globex_key))
    assert resp.status == 201
    status, _ = await _patch(api, {"knowledge_embeddings": _setting(own)})
    assert status == 422


async def test_provider_keys_off_refuse_a_reference_but_not_a_keyless_endpoint(
    database_url: str, operator: EmbeddingsStandIn, own: EmbeddingsStandIn
) -> None:
    settings = _settings(database_url, operator)
    settings.byok.mode = "off"
    async with serving(settings) as api:
        status, answer = await _patch(api, {"knowledge_embeddings": _setting(own)})
        assert status == 403, answer
        assert answer["error"] == "Provider keys disabled"
        keyless = {"url": own.url, "model": "acme-embed-48"}
        status, answer = await _patch(api, {"knowledge_embeddings": keyless})
        assert status == 200, answer
