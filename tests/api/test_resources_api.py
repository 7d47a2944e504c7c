"""Assistants, phone numbers, trunks, health and the OpenAPI document."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

from api.conftest import Api, serving
from api.contract import DOCUMENT, conforms, is_valid, operation, statuses
from fakes.world import ACME_NUMBERS, DESTINATION, GLOBEX_NUMBER, SUPPORT_ID, make_settings
from voicedock.api.models.document import openapi_document
from voicedock.config import TrunkSettings
from voicedock.organizations.numbers import (
    NumberRefused,
    add_number,
    assign_number,
    remove_number,
)

pytestmark = pytest.mark.unit


async def test_assistant_crud(api: Api) -> None:
    h = api.auth()
    resp = await api.client.post(
        "/assistants", json={"name": "Sales", "provider": "xai_realtime"}, headers=h
    )
    assert resp.status == 201
    created = await resp.json()
    assert created["name"] == "Sales"
    assert created["active"] is True
    aid = created["id"]
    listed = await (await api.client.get("/assistants", headers=h)).json()
    assert aid in [a["id"] for a in listed["assistants"]]
    patched = await api.client.patch(f"/assistants/{aid}", json={"first_message": "Hey"}, headers=h)
    assert (await patched.json())["first_message"] == "Hey"
    other = await api.client.get(f"/assistants/{aid}", headers=api.auth(api.globex_key))
    assert other.status == 404
    assert (await api.client.delete(f"/assistants/{aid}", headers=h)).status == 204
    assert (await api.client.get(f"/assistants/{aid}", headers=h)).status == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x", "colour": "red"},
        {"name": "x", "active": "yes"},
        {"name": "x", "llm_config": {"messages": [{"role": "robot", "content": "x"}]}},
    ],
)
async def test_bad_assistant_bodies(api: Api, body: dict[str, object]) -> None:
    resp = await api.client.post("/assistants", json=body, headers=api.auth())
    assert resp.status == 400
    assert not is_valid(body, "AssistantCreate")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "x", "provider": "openai"}, "requires both stt_config and tts_config"),
        ({"name": "x", "provider": "xai_realtime", "stt_config": {}}, "omit stt_config"),
        ({"name": "x", "tts_config": {"api_key": "k"}}, "not a setting of the piper TTS"),
    ],
)
async def test_configurations_that_do_not_resolve_are_400(
    api: Api, body: dict[str, object], message: str
) -> None:
    """Valid field by field; not once the provider rules apply or resolved against the node's
    engines (here the default TTS is piper, which takes no api_key): 400 Unresolvable
    configuration naming the key (it was 422)."""
    resp = await api.client.post("/assistants", json=body, headers=api.auth())
    assert resp.status == 400
    answer = await resp.json()
    assert answer["error"] == "Unresolvable configuration"
    assert message in answer["message"]
    assert 400 in statuses("/assistants", "post")


@pytest.mark.parametrize(
    "section",
    [
        {"provider": "piper", "api_key": "k"},
        {"provider": "openai", "speed": 40},
        {"provider": "openai", "api_key": ""},
        {"": "x"},
    ],
)
async def test_provider_sections_are_checked_per_provider_in_the_schema_too(
    api: Api, section: dict[str, object]
) -> None:
    """A section naming its provider takes that provider's keys, each bounded: the API's 400
    and the schema agree (a key of another provider was schema-valid)."""
    body = {"name": "x", "tts_config": section}
    assert not is_valid(body, "AssistantCreate")
    resp = await api.client.post("/assistants", json=body, headers=api.auth())
    assert resp.status == 400


async def test_assistant_in_use_cannot_be_deleted(api: Api) -> None:
    resp = await api.client.delete(f"/assistants/{SUPPORT_ID}", headers=api.auth())
    assert resp.status == 409


async def test_phone_numbers_are_the_operators(api: Api) -> None:
    """The operator adds a number (``voicedock numbers``); the organization reads it and sets
    its label and assistant, and nothing else."""
    h = api.auth()
    settings = api.service.settings
    created, _ = await add_number(
        api.service.store, settings, "+31201112233", "carrier", "acme", max_concurrent_calls=2
    )
    nid = created.id
    for bad in (("+31201112233", "carrier"), ("+31201112234", "nope"), ("+31 20", "carrier")):
        with pytest.raises(NumberRefused):
            await add_number(api.service.store, settings, *bad, "acme")
    refused = await api.client.post(
        "/phone-numbers", json={"number": "+31201112235", "trunk": "carrier"}, headers=h
    )
    assert refused.status == 403
    assert (await refused.json())["error"] == "Operator setting"
    patched = await api.client.patch(
        f"/phone-numbers/{nid}", json={"assistant_id": SUPPORT_ID, "label": "Desk"}, headers=h
    )
    assert patched.status == 200
    assert (await patched.json())["assistant_id"] == SUPPORT_ID
    for body in ({"number": "+1"}, {"trunk": "carrier"}, {"max_concurrent_calls": 9}):
        bad_patch = await api.client.patch(f"/phone-numbers/{nid}", json=body, headers=h)
        assert bad_patch.status == 403, body
    unknown = await api.client.patch(f"/phone-numbers/{nid}", json={"colour": 1}, headers=h)
    assert unknown.status == 400
    numbers = await (await api.client.get("/phone-numbers", headers=h)).json()
    assert {n["number"] for n in numbers["phone_numbers"]} == {*ACME_NUMBERS, "+31201112233"}
    other = await (await api.client.get("/phone-numbers", headers=api.auth(api.globex_key))).json()
    assert "+31201112233" not in {n["number"] for n in other["phone_numbers"]}
    assert (await api.client.delete(f"/phone-numbers/{nid}", headers=h)).status == 403
    await remove_number(api.service.store, settings, "+31201112233")
    assert (await api.client.get(f"/phone-numbers/{nid}", headers=h)).status == 404


async def test_number_with_live_call_cannot_be_removed(api: Api) -> None:
    resp = await api.client.post(
        "/calls/outbound",
        json={"destination": DESTINATION, "assistant_id": SUPPORT_ID},
        headers=api.auth(),
    )
    call = await api.service.store.get_call(None, (await resp.json())["call_id"])
    assert call is not None
    number = await api.service.store.get_phone_number(None, call.number_id or "")
    assert number is not None
    settings = msgspec.structs.replace(api.service.settings, numbers=[])  # as if added by command
    with pytest.raises(NumberRefused, match="in progress"):
        await remove_number(api.service.store, settings, number.number)
    with pytest.raises(NumberRefused, match="in progress"):
        await assign_number(api.service.store, settings, number.number, "globex")


async def test_trunks_are_read_only(api: Api) -> None:
    body = await (await api.client.get("/trunks", headers=api.auth())).json()
    assert body["trunks"] == [
        {
            "name": "carrier",
            "endpoint": "carrier-ep",
            "codec": "ulaw",
            "description": "",
            "pbx": None,
        }
    ]
    assert (await api.client.get("/trunks/carrier", headers=api.auth())).status == 200
    assert (await api.client.get("/trunks/nope", headers=api.auth())).status == 404
    assert (await api.client.post("/trunks", json={}, headers=api.auth())).status == 405


async def test_trunks_are_listed_to_the_organizations_they_serve(database_url: str) -> None:
    settings = make_settings(database_url)
    settings.trunks.append(TrunkSettings(name="acme-only", organizations=["acme"]))
    async with serving(settings) as api:
        for key, wanted in (
            (api.acme_key, ["acme-only", "carrier"]),
            (api.globex_key, ["carrier"]),
        ):
            body = await (await api.client.get("/trunks", headers=api.auth(key))).json()
            assert [t["name"] for t in body["trunks"]] == wanted
        hidden = await api.client.get("/trunks/acme-only", headers=api.auth(api.globex_key))
        assert hidden.status == 404
        # globex's number on it (left by an earlier configuration) is not called from.
        globex_number = await api.service.store.find_phone_number_by_e164(GLOBEX_NUMBER)
        assert globex_number is not None
        async with api.service.store.transaction() as tx:
            await tx.update_phone_number(dataclasses.replace(globex_number, trunk="acme-only"))
        resp = await api.client.post(
            "/calls/outbound",
            json={"destination": DESTINATION, "assistant": {"name": "x"}},
            headers=api.auth(api.globex_key),
        )
        assert resp.status == 403
        assert (await resp.json())["error"] == "Trunk not allowed"
        assert api.pbx.originated == []


async def test_openapi_covers_every_route(api: Api) -> None:
    doc = await (await api.client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    registered = set()
    for route in api.client.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if route.method != "HEAD":
            registered.add((path, route.method))
    assert registered <= documented, registered - documented
    assert documented <= registered, documented - registered
    assert doc == openapi_document()
    # Every authenticated route reads the store: its 503 (database unavailable) is documented.
    undocumented = [
        (path, method)
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        if op.get("security") != [] and "503" not in op["responses"]
    ]
    assert not undocumented, undocumented


async def test_assistant_reads_conform_to_the_schema_without_a_business_name(api: Api) -> None:
    """POST {"name": "0"}: business_name reads null (was "", which the schema forbids)."""
    h = api.auth()
    created = await (await api.client.post("/assistants", json={"name": "0"}, headers=h)).json()
    conforms(created, "Assistant")
    got = await (await api.client.get(f"/assistants/{created['id']}", headers=h)).json()
    assert got["business_name"] is None
    conforms(got, "Assistant")
    named = await api.client.patch(
        f"/assistants/{created['id']}", json={"business_name": "Acme"}, headers=h
    )
    assert (await named.json())["business_name"] == "Acme"
    cleared = await api.client.patch(
        f"/assistants/{created['id']}", json={"business_name": None}, headers=h
    )
    assert (await cleared.json())["business_name"] is None


async def test_assistant_texts_up_to_their_documented_length(api: Api) -> None:
    """A 20,000-character system prompt is accepted and reads back within the schema."""
    body = {"name": "Long", "system_prompt": "x" * 20_000, "first_message": "y" * 20_000}
    assert is_valid(body, "AssistantCreate")
    assert not is_valid({**body, "system_prompt": "x" * 20_001}, "AssistantCreate")
    resp = await api.client.post("/assistants", json=body, headers=api.auth())
    assert resp.status == 201
    conforms(await resp.json(), "Assistant")
    too_long = await api.client.post(
        "/assistants", json={**body, "system_prompt": "x" * 20_001}, headers=api.auth()
    )
    assert too_long.status == 400


@pytest.mark.parametrize("key", ["active", "name"])
async def test_null_active_or_name_is_refused(api: Api, key: str) -> None:
    """The schema has no null for them: the API refuses it (it was ignored)."""
    h = api.auth()
    created = await (await api.client.post("/assistants", json={"name": "A"}, headers=h)).json()
    assert not is_valid({key: None}, "AssistantUpdate")
    resp = await api.client.patch(f"/assistants/{created['id']}", json={key: None}, headers=h)
    assert resp.status == 400
    assert key in (await resp.json())["message"]


async def test_a_body_declared_of_another_type_is_415(api: Api) -> None:
    resp = await api.client.post(
        "/assistants",
        data=b'{"name": "A"}',
        headers={**api.auth(), "Content-Type": "text/plain"},
    )
    assert resp.status == 415
    assert (await resp.json())["error"] == "Unsupported media type"
    assert 415 in statuses("/assistants", "post")
    undeclared = await api.client.post(
        "/assistants",
        data=b'{"name": "A"}',
        headers=api.auth(),
        skip_auto_headers=["Content-Type"],
    )
    assert undeclared.status == 201  # no Content-Type: read as JSON


def test_every_operation_with_a_body_documents_415() -> None:
    for path, methods in DOCUMENT["paths"].items():
        for method, op in methods.items():
            if "requestBody" in op:
                assert "415" in op["responses"], f"{method} {path}"


def test_creations_link_to_the_operations_on_what_they_created() -> None:
    links = operation("/calls/outbound", "post")["responses"]["200"]["links"]
    assert {link["operationRef"] for link in links.values()} == {
        "#/paths/~1calls~1{id}/get",
        "#/paths/~1calls~1{id}~1control/post",
    }
    assert all(link["parameters"] == {"id": "$response.body#/call_id"} for link in links.values())
    placing = operation("/assistants", "post")["responses"]["201"]["links"]["PlaceCall"]
    assert placing == {
        "operationRef": "#/paths/~1calls~1outbound/post",
        "requestBody": {"assistant_id": "$response.body#/id"},
    }
    for path in ("/assistants", "/tool-templates", "/webhooks", "/campaigns"):
        created = operation(path, "post")["responses"]["201"]["links"]
        assert f"#/paths/{path.replace('/', '~1')}~1{{id}}/get" in {
            link["operationRef"] for link in created.values()
        }


async def test_a_section_provider_that_is_no_name_is_400_not_500(api: Api) -> None:
    """{"llm_config": {"provider": {}}} reached the provider registry unchecked: a 500."""
    body = {"name": "x", "llm_config": {"messages": [], "provider": {}}}
    assert not is_valid(body, "AssistantCreate")
    resp = await api.client.post("/assistants", json=body, headers=api.auth())
    assert resp.status == 400
    assert "llm_config.provider" in (await resp.json())["message"]


async def test_an_integral_number_written_with_a_fraction_is_that_integer(api: Api) -> None:
    """JSON Schema counts 56.0 as the integer 56: so does the API (it was a 400)."""
    raw = b'{"name": "x", "max_duration_seconds": 56.0, "llm_filler": {"delay_seconds": 1.5}}'
    resp = await api.client.post(
        "/assistants", data=raw, headers={**api.auth(), "Content-Type": "application/json"}
    )
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["max_duration_seconds"] == 56
    assert created["llm_filler"]["delay_seconds"] == 1.5


async def test_null_optional_settings_are_documented_as_accepted(api: Api) -> None:
    """Nested optional settings read null as left out: the schema says so (they were
    schema-invalid yet accepted)."""
    body = {
        "name": "x",
        "analysis_plan": {"summary_prompt": None, "structured_data_schema": None},
        "tool_filler": {"message": None, "delay_seconds": None},
        "llm_filler": {"messages": None},
        "assistant_request": {"timeout_seconds": None},
        "llm_config": {"messages": None},
        "first_message": None,
    }
    conforms(body, "AssistantCreate")
    resp = await api.client.post("/assistants", json=body, headers=api.auth())
    assert resp.status == 201, await resp.text()
    conforms(await resp.json(), "Assistant")


def test_every_authenticated_operation_documents_the_rate_limit() -> None:
    for path, methods in DOCUMENT["paths"].items():
        for method, op in methods.items():
            if op.get("security") != []:
                assert "Retry-After" in op["responses"]["429"]["headers"], f"{method} {path}"


async def test_a_section_naming_a_blank_provider_is_schema_invalid_too(api: Api) -> None:
    """A provider name this list does not know is still a name: not blank (was schema-valid,
    then a 400)."""
    body = {"name": "x", "stt_config": {"provider": " "}}
    assert not is_valid(body, "AssistantCreate")
    assert is_valid({"name": "x", "stt_config": {"provider": "plugin-engine"}}, "AssistantCreate")
    resp = await api.client.post("/assistants", json=body, headers=api.auth())
    assert resp.status == 400
