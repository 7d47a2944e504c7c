"""The assistant configuration's bodies (``/assistants`` and ``/agents``, ``/tool-templates``,
``/analysis-templates``, the organization's ``assistant_defaults``, a call's or a squad
member's configuration) are read once, by their model; what the settings mean is checked on
what it decoded, and a body both refuse is answered in the words of that check, as before the
model read it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from api.conftest import Api
from api.contract import conforms
from api.test_calls_api import DESTINATION, post_outbound
from api.test_organization_api import admin
from fakes.world import SUPPORT_ID
from voicedock.api.models.base import Body

pytestmark = pytest.mark.unit

BAD = "Bad request"
ASSISTANT = {"name": "Front desk", "first_message": "Hello."}
PLAN = {"name": "Outcome", "summary_prompt": "Summarize the call."}

# (path, body, message): the check's words where the model refuses the body too, msgspec's
# where the model alone refuses it.
REFUSED = [
    ("/assistants", [], "body must be a JSON object"),
    ("/assistants", {"first_message": "Hi."}, "name is required"),
    ("/agents", {**ASSISTANT, "name": 5}, "name must be a string"),
    (
        "/assistants",
        {**ASSISTANT, "tool_filler": {"delay_seconds": 11}},
        "tool_filler.delay_seconds must be a number of seconds, 0-10",
    ),
    ("/assistants", {**ASSISTANT, "colour": "red"}, "body: unknown field(s): colour"),
    (
        "/tool-templates",
        {"type": "hold"},
        "body.type must be one of webhook, end_call, transfer_call, send_dtmf, "
        "collect_secure_digits",
    ),
    (
        "/tool-templates",
        {"type": "end_call", "name": "two words"},
        "body.name must be 1-64 of A-Z, a-z, 0-9, _ and -",
    ),
    ("/tool-templates", {"type": "end_call", "description": ""}, "description must not be empty"),
    (
        "/assistants",
        {**ASSISTANT, "keypad": {"timeout_seconds": "1"}},
        "keypad.timeout_seconds must be a number of seconds, 0.5-30.0",
    ),
    ("/analysis-templates", {**PLAN, "name": 5}, "name must be a string"),
    ("/analysis-templates", {"summary_prompt": "x"}, "name is required"),
]


@pytest.mark.parametrize(("path", "body", "message"), REFUSED)
async def test_a_refused_configuration_answers_as_before(
    api: Api, path: str, body: object, message: str
) -> None:
    response = await api.client.post(path, json=body, headers=api.auth())
    assert response.status == 400
    assert await response.json() == {"error": BAD, "message": message}


# (configuration, message): a refusal inside a plan or a list names its place in the
# configuration, in the words of the setting's type.
PLACED = [
    (
        {"llm_config": {"messages": [{"role": "user"}]}},
        "llm_config.messages[0].content must be a string",
    ),
    (
        {"llm_config": {"messages": [{"role": "robot", "content": "Hi."}]}},
        "llm_config.messages[0].role must be one of ('system', 'user', 'assistant')",
    ),
    ({"analysis_plan": {"summary_prompt": 5}}, "analysis_plan.summary_prompt must be a string"),
    (
        {"redaction_plan": {"custom_patterns": [{"name": "p"}]}},
        "redaction_plan.custom_patterns[0].regex must be a text of 1-500 characters",
    ),
    ({"facts": {"plan": 5}}, "facts must map names to strings"),
    ({"dead_air_seconds": 31}, "dead_air_seconds must be between 1 and 30"),
]


@pytest.mark.parametrize(("config", "message"), PLACED)
async def test_a_refusal_names_its_place_in_the_configuration(
    api: Api, config: dict[str, Any], message: str
) -> None:
    saved = await api.client.post("/assistants", json={**ASSISTANT, **config}, headers=api.auth())
    assert saved.status == 400
    assert await saved.json() == {"error": BAD, "message": message}
    placed = await post_outbound(api, {"destination": DESTINATION, "assistant": config})
    assert placed.status == 400
    assert await placed.json() == {"error": BAD, "message": message}
    listed = await (await api.client.get("/assistants", headers=api.auth())).json()
    assert ASSISTANT["name"] not in [a["name"] for a in listed["assistants"]]
    calls = await api.client.get("/calls", headers=api.auth())
    assert (await calls.json())["calls"] == []


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The request models a request's bodies are decoded into, in order."""
    models: list[str] = []
    convert: Callable[..., Any] = msgspec.convert

    def counting(value: object, kind: object, **options: Any) -> Any:
        if isinstance(kind, type) and issubclass(kind, Body):
            models.append(kind.__name__)
        return convert(value, kind, **options)

    monkeypatch.setattr(msgspec, "convert", counting)
    return models


async def test_each_body_is_decoded_once(api: Api, decoded: list[str]) -> None:
    h = api.auth()
    created = await api.client.post("/assistants", json=ASSISTANT, headers=h)
    assert created.status == 201, await created.text()
    assert decoded == ["AssistantCreate"]  # the organization's defaults are not a re-read
    decoded.clear()
    assistant_id = (await created.json())["id"]
    patched = await api.client.patch(
        f"/assistants/{assistant_id}", json={"first_message": "Hi."}, headers=h
    )
    assert patched.status == 200, await patched.text()
    assert decoded == ["AssistantUpdate"]
    decoded.clear()
    tool = await api.client.post("/tool-templates", json={"type": "end_call"}, headers=h)
    assert tool.status == 201, await tool.text()
    assert decoded == ["EndCallTool"]
    decoded.clear()
    plan = await api.client.post("/analysis-templates", json=PLAN, headers=h)
    assert plan.status == 201, await plan.text()
    assert decoded == ["AnalysisTemplateCreate"]
    decoded.clear()
    defaults = {"assistant_defaults": {"first_message": "Welcome."}}
    org = await api.client.patch("/organization", json=defaults, headers=await admin(api))
    assert org.status == 200, await org.text()
    assert decoded == ["OrganizationUpdate", "AssistantDefaultsUpdate"]


async def test_a_tool_template_keeps_what_was_sent(api: Api) -> None:
    """A field left out stays out of the template, one sent as null is null (the model's
    decoding tells them apart)."""
    h = api.auth()
    left_out = await api.client.post("/tool-templates", json={"type": "end_call"}, headers=h)
    assert left_out.status == 201, await left_out.text()
    answer = await left_out.json()
    assert "name" not in answer
    assert "description" not in answer
    nulls = {"type": "end_call", "name": None, "description": None}
    sent_null = await api.client.post("/tool-templates", json=nulls, headers=h)
    assert sent_null.status == 201, await sent_null.text()
    answer = await sent_null.json()
    assert (answer["name"], answer["description"]) == (None, None)
    read = await api.client.get(f"/tool-templates/{answer['id']}", headers=h)
    assert {k: (await read.json())[k] for k in nulls} == nulls


UNKNOWN_LLM = {"llm_config": {"provider": "AAA"}}
UNRESOLVABLE = "Unresolvable configuration"
NOT_AN_LLM = (
    "llm_config.provider 'AAA' is not one of mistral, offline, ollama, openai, "
    "openai-compatible, rule-based, rule_based, xai"
)


async def test_a_squad_member_whose_configuration_does_not_resolve_is_not_stored(
    api: Api,
) -> None:
    """A member's own configuration, or its override of a saved assistant, is refused as a
    call placed with it (or the assistant saved) is: 400 naming the member's field, nothing
    stored, an update leaving the squad as it was."""
    h = api.auth()
    as_an_assistant = await api.client.post(
        "/assistants", json={"name": "Desk", **UNKNOWN_LLM}, headers=h
    )
    assert as_an_assistant.status == 400
    assert await as_an_assistant.json() == {"error": UNRESOLVABLE, "message": NOT_AN_LLM}
    own = {"name": "desk", "assistant": UNKNOWN_LLM}
    override = {"name": "desk", "assistant_id": SUPPORT_ID, "assistant_override": UNKNOWN_LLM}
    for member, where in ((own, "assistant"), (override, "assistant_override")):
        resp = await api.client.post(
            "/squads", json={"name": "Front desk", "members": [member]}, headers=h
        )
        assert resp.status == 400, await resp.text()
        assert await resp.json() == {
            "error": UNRESOLVABLE,
            "message": f"members[0].{where}.{NOT_AN_LLM}",
        }
    listed = await api.client.get("/squads", headers=h)
    assert (await listed.json())["squads"] == []

    good = {"name": "desk", "assistant": {"first_message": "Hello."}}
    created = await api.client.post(
        "/squads", json={"name": "Front desk", "members": [good]}, headers=h
    )
    assert created.status == 201, await created.text()
    squad = await created.json()
    patched = await api.client.patch(f"/squads/{squad['id']}", json={"members": [own]}, headers=h)
    assert patched.status == 400
    assert (await patched.json())["error"] == UNRESOLVABLE
    read = await api.client.get(f"/squads/{squad['id']}", headers=h)
    assert await read.json() == squad
    conforms(squad, "Squad")


@pytest.mark.parametrize("field", ["assistant", "agent"])
async def test_an_inline_configuration_is_read_by_its_model(api: Api, field: str) -> None:
    """``POST /calls/outbound`` reads ``assistant`` (and its deprecated alias ``agent``) by the
    configuration's model: what its schema refuses is refused (400 naming the field, no call
    placed), what the configuration's check refuses in that check's words as before."""
    plan = {"redaction_plan": {"custom_patterns": None}}
    resp = await post_outbound(api, {"destination": DESTINATION, field: plan})
    assert resp.status == 400
    assert await resp.json() == {
        "error": BAD,
        "message": f"{field}.redaction_plan.custom_patterns: expected `array`, got `null`",
    }
    keypad = {"keypad": {"timeout_seconds": "1"}}
    worded = await post_outbound(api, {"destination": DESTINATION, field: keypad})
    assert await worded.json() == {
        "error": BAD,
        "message": "keypad.timeout_seconds must be a number of seconds, 0.5-30.0",
    }
    null = await post_outbound(api, {"destination": DESTINATION, field: None})
    assert await null.json() == {"error": BAD, "message": f"{field} must not be null"}
    calls = await api.client.get("/calls", headers=api.auth())
    assert (await calls.json())["calls"] == []


async def test_a_tool_template_whose_type_is_no_text_is_refused(api: Api) -> None:
    resp = await api.client.post(
        "/tool-templates", json={"type": {}, "name": "lookup"}, headers=api.auth()
    )
    assert resp.status == 400
    assert (await resp.json())["error"] == BAD
