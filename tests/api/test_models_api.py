"""The API's models are its contract: ``/openapi.json`` is made from them, and a body that
breaks one is a 400 in the documented error shape whose message names the field."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Annotated

import pytest
from msgspec import Meta

from api.conftest import Api
from fakes.world import ACME
from voicedock.api.api_keys import MAX_NAME, issue_api_key
from voicedock.api.models import document
from voicedock.api.models.base import Body
from voicedock.api.models.operations import operation
from voicedock.calls.outbound.request import RING_TIMEOUT_BOUNDS
from voicedock.domain.records import KeyScope

pytestmark = pytest.mark.unit


class Probe(Body, kw_only=True):
    size: Annotated[int, Meta(ge=3, le=7, description="How big.")]


@pytest.fixture
def with_probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    group = SimpleNamespace(
        PATHS={"/probe": {"post": operation("Probe", ("204", None), body=Probe)}},
        MODELS=(Probe,),
    )
    monkeypatch.setattr(document, "GROUPS", (*document.GROUPS, group))
    document._document.cache_clear()
    yield
    document._document.cache_clear()


@pytest.mark.usefixtures("with_probe")
def test_a_model_s_fields_and_bounds_are_what_the_document_says() -> None:
    doc = document.openapi_document()
    size = doc["components"]["schemas"]["Probe"]["properties"]["size"]
    assert size == {"type": "integer", "minimum": 3, "maximum": 7, "description": "How big."}
    body = doc["paths"]["/probe"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/Probe"}
    assert doc["components"]["schemas"]["Probe"]["additionalProperties"] is False


async def test_the_served_document_is_the_models_one(api: Api) -> None:
    resp = await api.client.get("/openapi.json")
    served = await resp.json()
    assert served == document.openapi_document()
    ring = served["components"]["schemas"]["OutboundCallRequest"]["properties"][
        "ring_timeout_seconds"
    ]["anyOf"][0]
    assert (ring["minimum"], ring["maximum"]) == RING_TIMEOUT_BOUNDS  # calls/'s bounds


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"name": "x" * (MAX_NAME + 1)}, "name: expected `str` of length <= 100"),
        ({"name": "ops", "scope": "root"}, "scope: invalid enum value 'root'"),
        ({"name": "ops", "color": "red"}, "body: unknown field(s): color"),
        ({"name": 5}, "name: expected `str | null`, got `int`"),
        ([], "body: expected `object`, got `array`"),
    ],
)
async def test_a_field_that_breaks_its_model_is_a_400_naming_it(
    api: Api, body: object, named: str
) -> None:
    admin, _ = await issue_api_key(api.service.store, ACME, "ops", KeyScope.ADMIN)
    resp = await api.client.post(
        "/api-keys", json=body, headers={"Authorization": f"Bearer {admin}"}
    )
    assert resp.status == 400
    assert await resp.json() == {"error": "Bad request", "message": named}


async def test_a_nested_field_is_named_by_its_path(api: Api) -> None:
    resp = await api.client.post(
        "/tool-templates",
        json={"type": "transfer_call", "destinations": ["+31201234567"], "mode": "warm"},
        headers={"Authorization": f"Bearer {api.acme_key}"},
    )
    assert resp.status == 201
    resp = await api.client.post(
        "/campaigns/none/contacts",
        json={"contacts": [{"destination": "+31612345678", "variables": {"a": 5}}]},
        headers={"Authorization": f"Bearer {api.acme_key}"},
    )
    assert resp.status == 400
    assert "contacts[0].variables" in (await resp.json())["message"]


def test_a_configuration_s_llm_config_is_documented_as_its_type() -> None:
    """The sections a request's model decodes are what the document says: llm_config names
    the keys some LLM or realtime session takes, each bounded, and no other."""
    schemas = document.openapi_document()["components"]["schemas"]
    for model in ("AssistantConfig", "AssistantOverride", "AssistantCreate", "AssistantUpdate"):
        llm = schemas[model]["properties"]["llm_config"]["anyOf"][0]
        assert llm == {"$ref": "#/components/schemas/LlmSection"}
        stt = schemas[model]["properties"]["stt_config"]["anyOf"][0]
        assert stt == {"$ref": "#/components/schemas/SttConfig"}  # per provider, by hand
    section = schemas["LlmSection"]
    assert section["additionalProperties"] is False
    assert {"temperature", "url", "say_voice", "fallback_plan"} <= section["properties"].keys()
    assert "model_path" not in section["properties"]  # the operator's
    temperature = section["properties"]["temperature"]
    assert temperature == {"type": "number", "minimum": 0, "maximum": 2}
    assert not {"SttConfigPlanEntry", "VoiceSettingsSection"} & schemas.keys()  # unreferred


def test_an_llm_config_s_plan_messages_and_say_voice_are_typed() -> None:
    """Its fallback plan's entries are LLM sections with no plan of their own, its messages
    seed messages, its say_voice a TTS section as documented per provider."""
    schemas = document.openapi_document()["components"]["schemas"]
    section = schemas["LlmSection"]["properties"]
    plan = section["fallback_plan"]
    assert (plan["minItems"], plan["maxItems"]) == (1, 3)
    assert plan["items"] == {"$ref": "#/components/schemas/LlmSectionPlanEntry"}
    assert "fallback_plan" not in schemas["LlmSectionPlanEntry"]["properties"]
    assert section["say_voice"]["anyOf"][0] == {"$ref": "#/components/schemas/TtsConfig"}
    messages = section["messages"]["anyOf"][0]
    assert messages["items"] == {"$ref": "#/components/schemas/SentMessage"}
    assert schemas["SentMessage"]["additionalProperties"] is False  # a key it does not name: 400
