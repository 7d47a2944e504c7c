"""Provider keys over REST (bring your own key): stored sealed per organization, listed
masked, rotated, deleted (409 while referenced), referenced by assistants by name; the
operator's [byok] mode forbids or requires them."""

from __future__ import annotations

from typing import Any

import pytest

from api.conftest import Api, serving
from api.contract import conforms, statuses
from fakes.world import ACME, make_settings, org_id

pytestmark = pytest.mark.unit

SECRET = "sk-acme-own-key-0123456789wxyz"
NEW_SECRET = "sk-acme-rotated-key-9876543210abcd"
KEY = {"name": "my-openai", "provider": "openai", "api_key": SECRET}
USES_KEY = {"name": "Own key", "llm_config": {"provider": "openai", "api_key_ref": "my-openai"}}


async def _create(api: Api, body: dict[str, Any] = KEY, key: str | None = None) -> Any:
    resp = await api.client.post("/provider-keys", json=body, headers=api.auth(key))
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def test_create_list_rotate_delete_masked(api: Api) -> None:
    h = api.auth()
    created = await _create(api)
    conforms(created, "ProviderKey")
    assert created["api_key"] == "****wxyz"
    assert SECRET not in str(created)
    listed = await (await api.client.get("/provider-keys", headers=h)).json()
    conforms(listed, "ProviderKeyList")
    assert [(k["name"], k["api_key"]) for k in listed["provider_keys"]] == [
        ("my-openai", "****wxyz")
    ]
    rotated = await api.client.patch(
        f"/provider-keys/{created['id']}", json={"api_key": NEW_SECRET}, headers=h
    )
    assert rotated.status == 200, await rotated.text()
    assert (await rotated.json())["api_key"] == "****abcd"
    again = await api.client.post("/provider-keys", json=KEY, headers=h)
    assert again.status == 409  # one name per organization
    assert (await api.client.delete(f"/provider-keys/{created['id']}", headers=h)).status == 204
    assert (await api.client.get(f"/provider-keys/{created['id']}", headers=h)).status == 404


async def test_the_database_holds_only_the_sealed_key(api: Api) -> None:
    created = await _create(api)
    stored = await api.service.store.get_provider_key(org_id(ACME), created["id"])
    assert stored is not None
    assert SECRET not in stored.sealed
    assert stored.sealed.startswith("v1:")
    assert stored.last4 == "wxyz"


async def test_another_organizations_key_is_not_found(api: Api) -> None:
    created = await _create(api)
    other = api.auth(api.globex_key)
    path = f"/provider-keys/{created['id']}"
    assert (await api.client.get(path, headers=other)).status == 404
    assert (await api.client.patch(path, json={"api_key": NEW_SECRET}, headers=other)).status == 404
    assert (await api.client.delete(path, headers=other)).status == 404
    listed = await (await api.client.get("/provider-keys", headers=other)).json()
    assert listed["provider_keys"] == []
    # nor can another organization's assistant reference it by name
    resp = await api.client.post("/assistants", json=USES_KEY, headers=other)
    assert resp.status == 422
    assert "no provider key named" in (await resp.json())["message"]


async def test_a_referenced_key_cannot_be_deleted(api: Api) -> None:
    h = api.auth()
    created = await _create(api)
    resp = await api.client.post("/assistants", json=USES_KEY, headers=h)
    assert resp.status == 201, await resp.text()
    assistant = await resp.json()
    assert assistant["llm_config"]["api_key_ref"] == "my-openai"
    gone = await api.client.delete(f"/provider-keys/{created['id']}", headers=h)
    assert gone.status == 409
    assert 409 in statuses("/provider-keys/{id}", "delete")
    assert "Own key" in (await gone.json())["message"]
    await api.client.delete(f"/assistants/{assistant['id']}", headers=h)
    assert (await api.client.delete(f"/provider-keys/{created['id']}", headers=h)).status == 204


async def test_a_reference_to_a_key_of_another_provider_is_refused(api: Api) -> None:
    await _create(api, {"name": "dg", "provider": "deepgram", "api_key": SECRET})
    body = {"name": "Wrong", "llm_config": {"provider": "openai", "api_key_ref": "dg"}}
    resp = await api.client.post("/assistants", json=body, headers=api.auth())
    assert resp.status == 422
    assert "is for deepgram" in (await resp.json())["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "bad name!", "provider": "openai", "api_key": SECRET},
        {"name": "k", "provider": "piper", "api_key": SECRET},
        {"name": "k", "provider": "openai", "api_key": ""},
        {"name": "k", "provider": "openai"},
    ],
)
async def test_invalid_bodies_are_400(api: Api, body: dict[str, Any]) -> None:
    resp = await api.client.post("/provider-keys", json=body, headers=api.auth())
    assert resp.status == 400


async def test_mode_off_forbids_keys_and_references(database_url: str) -> None:
    settings = make_settings(database_url)
    settings.byok.mode = "off"
    async with serving(settings) as api:
        h = api.auth()
        assert (await api.client.get("/provider-keys", headers=h)).status == 403
        resp = await api.client.post("/provider-keys", json=KEY, headers=h)
        assert resp.status == 403
        assert (await resp.json())["error"] == "Provider keys disabled"
        resp = await api.client.post("/assistants", json=USES_KEY, headers=h)
        assert resp.status == 403


async def test_without_an_operator_key_nothing_is_stored(database_url: str) -> None:
    settings = make_settings(database_url)
    settings.byok.key = ""
    async with serving(settings) as api:
        resp = await api.client.post("/provider-keys", json=KEY, headers=api.auth())
        assert resp.status == 403


async def test_mode_required_needs_a_reference_for_a_cloud_provider(database_url: str) -> None:
    settings = make_settings(database_url)
    settings.byok.mode = "required"
    settings.speech.llm = "openai"  # the operator's engine for assistants without llm_config
    async with serving(settings) as api:
        h = api.auth()
        bare = {"name": "Operator key", "llm_config": {"provider": "openai"}}
        resp = await api.client.post("/assistants", json=bare, headers=h)
        assert resp.status == 400  # the node's policy refuses it (it was 422)
        refused = await resp.json()
        assert refused["error"] == "Provider key required"
        assert "api_key_ref is required" in refused["message"]
        resp = await api.client.post("/assistants", json={"name": "Default"}, headers=h)
        assert resp.status == 400  # the operator's OpenAI engine would use the operator's key
        assert "llm_config.api_key_ref is required" in (await resp.json())["message"]
        offline = {"name": "Offline", "llm_config": {"provider": "rule-based"}}
        assert (await api.client.post("/assistants", json=offline, headers=h)).status == 201
        await _create(api)
        resp = await api.client.post("/assistants", json=USES_KEY, headers=h)
        assert resp.status == 201, await resp.text()
