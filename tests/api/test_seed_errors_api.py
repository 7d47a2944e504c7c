"""The seed's errors, as a client written against the VoiceDock page of ``POST /calls/outbound``
sees them: ``400`` for a request the page calls invalid (an invalid destination, an inactive
agent, and an assistant breaking the "Configuration Notes": ``openai``/``mistral`` require
both ``stt_config`` and ``tts_config``, ``xai_realtime`` omits them), ``404`` for an agent
that is not found (``assistant_id`` or its deprecated alias ``agent_id``). The same bodies
are ``400`` on ``/assistants`` and campaigns, a refused webhook URL is ``400`` like every
other refused field, and the served ``/openapi.json`` states the provider rules
(``if``/``then``) so that a schema-driven client refuses what the server refuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest

from api.conftest import Api, serving
from fakes.world import DESTINATION, SUPPORT_ID, make_settings

pytestmark = pytest.mark.unit

SPEECH = {"stt_config": {"provider": "offline"}, "tts_config": {"provider": "offline"}}
STT, TTS = ({"stt_config": SPEECH["stt_config"]}, {"tts_config": SPEECH["tts_config"]})
# The page's "Configuration Notes", broken: (a transient assistant, the section its message names).
BROKEN = {
    "openai-without-stt_config": ({"provider": "openai", **TTS}, "stt_config"),
    "openai-without-tts_config": ({"provider": "openai", **STT}, "tts_config"),
    "openai-without-either": ({"provider": "openai"}, "stt_config"),
    "mistral-without-stt_config": ({"provider": "mistral", **TTS}, "stt_config"),
    "mistral-without-tts_config": ({"provider": "mistral", **STT}, "tts_config"),
    "openai-with-a-null-stt_config": ({"provider": "openai", **SPEECH, "stt_config": None}, "stt"),
    "xai_realtime-with-stt_config": ({"provider": "xai_realtime", **STT}, "stt_config"),
    "xai_realtime-with-tts_config": ({"provider": "xai_realtime", **TTS}, "tts_config"),
    "xai_realtime-with-both": ({"provider": "xai_realtime", **SPEECH}, "stt_config"),
    # The same rules' other halves: a speech-to-speech model has no LLM filler, and openai and
    # mistral choose the LLM.
    "xai_realtime-with-an-llm_filler": (
        {"provider": "xai_realtime", "llm_filler": {"delay_seconds": 1}},
        "omit llm_filler",
    ),
    "openai-with-another-llm": (
        {"provider": "openai", **SPEECH, "llm_config": {"provider": "mistral"}},
        "llm_config.provider",
    ),
}
# The same notes, kept (a provider left out is the node's default, offline: it needs neither).
KEPT = {
    "openai-with-both": {"provider": "openai", **SPEECH},
    "mistral-with-both": {"provider": "mistral", **SPEECH},
    "xai_realtime-without-either": {"provider": "xai_realtime"},
    "xai_realtime-with-null-sections": {"provider": "xai_realtime", "stt_config": None},
    "no-provider": {"first_message": "Hello."},
    "no-provider-with-stt_config": {**STT},
    "xai_realtime-with-a-filler-of-no-delay": {
        "provider": "xai_realtime",
        "llm_filler": {"delay_seconds": None},
    },
    "openai-with-its-own-llm": {"provider": "openai", **SPEECH, "llm_config": {"model": "gpt-4o"}},
}


@pytest.fixture
async def roomy(database_url: str) -> AsyncIterator[Api]:
    """The API whose numbers take every call these tests place at once."""
    settings = make_settings(database_url)
    for number in settings.numbers:
        number.max_concurrent_calls = 100
    async with serving(settings) as running:
        yield running


async def outbound(api: Api, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    resp = await api.client.post("/calls/outbound", json=body, headers=api.auth())
    return resp.status, await resp.json()


def schema_validator(document: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    """A validator of the named component of ``document`` (as a schema-driven client has it)."""
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(root)


async def served_document(api: Api) -> dict[str, Any]:
    resp = await api.client.get("/openapi.json")
    assert resp.status == 200
    document: dict[str, Any] = await resp.json()
    return document


@pytest.mark.parametrize("case", list(BROKEN))
async def test_a_transient_assistant_breaking_the_configuration_notes_is_400(
    api: Api, case: str
) -> None:
    assistant, named = BROKEN[case]
    status, body = await outbound(api, {"destination": DESTINATION, "assistant": assistant})
    assert status == 400, body  # it was 422
    assert set(body) == {"error", "message"}
    assert body["error"] == "Unresolvable configuration"
    assert named in body["message"]
    assert api.pbx.originated == []
    calls = await (await api.client.get("/calls", headers=api.auth())).json()
    assert calls["calls"] == []  # nothing stored


async def test_the_seed_s_other_errors_hold(api: Api) -> None:
    """The page's table: 400 invalid destination format or inactive agent, 404 agent not found
    (by assistant_id and by the deprecated agent_id); an unknown number_id is not found too."""
    unknown = "17a0cb75-fa09-4bdd-9a44-92a70d829c88"  # the page's example id
    status, body = await outbound(api, {"destination": "+3161234", "assistant_id": SUPPORT_ID})
    assert (status, body["error"]) == (400, "Invalid destination format")
    for field in ("assistant_id", "agent_id"):
        status, body = await outbound(api, {"destination": DESTINATION, field: unknown})
        assert (status, body["error"]) == (404, "Assistant not found"), (field, body)
    status, body = await outbound(
        api, {"destination": DESTINATION, "assistant_id": SUPPORT_ID, "number_id": unknown}
    )
    assert (status, body["error"]) == (404, "Phone number not found")
    resp = await api.client.patch(
        f"/assistants/{SUPPORT_ID}", json={"active": False}, headers=api.auth()
    )
    assert resp.status == 200
    for field in ("assistant_id", "agent_id"):
        status, body = await outbound(api, {"destination": DESTINATION, field: SUPPORT_ID})
        assert (status, body["error"]) == (400, "Inactive assistant"), (field, body)
    assert api.pbx.originated == []


async def test_a_hybrid_override_breaking_the_notes_once_merged_is_400(api: Api) -> None:
    """The saved assistant (offline, no sections) made openai by its override: only the
    server sees the merged configuration; the answer is the same 400."""
    body = {
        "destination": DESTINATION,
        "assistant_id": SUPPORT_ID,
        "assistant_override": {"provider": "openai"},
    }
    status, answer = await outbound(api, body)
    assert status == 400, answer
    assert answer["error"] == "Unresolvable configuration"
    assert "stt_config" in answer["message"]
    for field in ("agent_id", "agent_config"):  # the deprecated names, the same answer
        alias = {"assistant_id": "agent_id", "assistant_override": "agent_config"}
        old = {alias.get(k, k): v for k, v in body.items()}
        assert field in old
        assert (await outbound(api, old))[0] == 400
    assert api.pbx.originated == []


@pytest.mark.parametrize("case", list(BROKEN))
async def test_the_same_assistant_is_400_on_assistants_and_campaigns(api: Api, case: str) -> None:
    assistant, named = BROKEN[case]
    h = api.auth()
    resp = await api.client.post("/assistants", json={"name": "Desk", **assistant}, headers=h)
    assert resp.status == 400, await resp.text()  # it was 422
    assert named in (await resp.json())["message"]
    campaign = {
        "name": "Reminders",
        "assistant": assistant,
        "contacts": [{"destination": DESTINATION}],
    }
    resp = await api.client.post("/campaigns", json=campaign, headers=h)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"] == "Unresolvable configuration"
    listed = await (await api.client.get("/campaigns", headers=h)).json()
    assert listed["campaigns"] == []


async def test_a_patch_breaking_the_notes_is_400_and_changes_nothing(api: Api) -> None:
    h = api.auth()
    created = await api.client.post(
        "/assistants", json={"name": "Desk", **KEPT["openai-with-both"]}, headers=h
    )
    assert created.status == 201, await created.text()
    path = f"/assistants/{(await created.json())['id']}"
    for patch in (
        {"stt_config": None},  # removes what openai requires
        {"provider": "xai_realtime"},  # keeps the sections xai_realtime refuses
        {"provider": "mistral", "tts_config": None},
    ):
        resp = await api.client.patch(path, json=patch, headers=h)
        assert resp.status == 400, (patch, await resp.text())
        assert (await resp.json())["error"] == "Unresolvable configuration"
    after = await (await api.client.get(path, headers=h)).json()
    assert (after["provider"], after["stt_config"]) == ("openai", SPEECH["stt_config"])


@pytest.mark.parametrize("case", list(KEPT))
async def test_an_assistant_keeping_the_notes_is_placed(api: Api, case: str) -> None:
    status, body = await outbound(api, {"destination": DESTINATION, "assistant": KEPT[case]})
    assert status == 200, body
    assert len(api.pbx.originated) == 1


async def test_a_refused_webhook_url_is_400_like_every_refused_field(api: Api) -> None:
    resp = await api.client.post(
        "/webhooks", json={"url": "http://10.0.0.5/hook"}, headers=api.auth()
    )
    assert resp.status == 400, await resp.text()  # it was 422
    body = await resp.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == "Webhook URL refused"
    assert "private" in body["message"], body
    listed = await (await api.client.get("/webhooks", headers=api.auth())).json()
    assert listed["webhooks"] == []


async def test_the_served_document_states_the_provider_rules(api: Api) -> None:
    """``if`` provider is openai/mistral ``then`` both sections are required; ``if`` it is
    xai_realtime ``then`` they are null at most, unless its ``llm_config`` names a fallback
    plan (they complete its pipeline). Hybrid mode's override does not require them (the saved
    assistant may hold them), and says so."""
    schemas = (await served_document(api))["components"]["schemas"]
    pipeline_if = {
        "properties": {"provider": {"enum": ["mistral", "openai"]}},
        "required": ["provider"],
    }
    realtime_if = {"properties": {"provider": {"enum": ["xai_realtime"]}}, "required": ["provider"]}
    for name in ("AssistantConfig", "AssistantCreate"):
        rules = {str(rule["if"]): rule["then"] for rule in schemas[name]["allOf"]}
        assert rules[str(pipeline_if)]["required"] == ["stt_config", "tts_config"], name
        none, planned = rules[str(realtime_if)]["anyOf"]
        assert none["properties"]["stt_config"] == {"type": "null"}, name
        assert none["properties"]["tts_config"] == {"type": "null"}, name
        with_plan = {"type": "object", "required": ["fallback_plan"]}
        assert planned == {"required": ["llm_config"], "properties": {"llm_config": with_plan}}
    override = {str(rule["if"]): rule["then"] for rule in schemas["AssistantOverride"]["allOf"]}
    assert str(pipeline_if) not in override
    assert "merged" in schemas["AssistantOverride"]["description"]
    request = schemas["OutboundCallRequest"]["properties"]
    assert request["assistant"] == {"$ref": "#/components/schemas/AssistantConfig"}
    assert request["assistant_override"] == {"$ref": "#/components/schemas/AssistantOverride"}
    outbound_errors = (await served_document(api))["paths"]["/calls/outbound"]["post"]
    assert {"400", "404"} <= set(outbound_errors["responses"])


async def test_the_document_refuses_what_the_server_refuses(roomy: Api) -> None:
    """A schema-driven client (and the fuzzer) validating with the served document agrees
    with the server on every body of the notes, kept or broken, in each place a
    configuration goes; only the hybrid merge, which the document says it cannot see, is the
    server's alone."""
    document = await served_document(roomy)
    calls = schema_validator(document, "OutboundCallRequest")
    assistants = schema_validator(document, "AssistantCreate")
    cases = [(assistant, False) for assistant, _ in BROKEN.values()]
    cases += [(assistant, True) for assistant in KEPT.values()]
    for assistant, accepted in cases:
        body = {"destination": DESTINATION, "assistant": assistant}
        status, answer = await outbound(roomy, body)
        assert (status == 200) is accepted, (assistant, answer)
        assert calls.is_valid(body) is accepted, assistant
        saved = {"name": f"Desk {len(cases)}-{cases.index((assistant, accepted))}", **assistant}
        resp = await roomy.client.post("/assistants", json=saved, headers=roomy.auth())
        assert (resp.status == 201) is accepted, (assistant, await resp.text())
        assert assistants.is_valid(saved) is accepted, assistant
    # An override naming xai_realtime with a section is valid as sent (the saved assistant's
    # llm_config may name the fallback plan whose pipeline it completes): merged onto one that
    # names none, the server refuses it. One naming openai is valid as sent too, the saved
    # assistant completes it (or not).
    override = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
    refused = {**override, "assistant_override": {"provider": "xai_realtime", **STT}}
    assert calls.is_valid(refused)
    assert (await outbound(roomy, refused))[0] == 400
    merged = {**override, "assistant_override": {"provider": "openai"}}
    assert calls.is_valid(merged)
    assert (await outbound(roomy, merged))[0] == 400
