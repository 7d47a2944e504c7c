"""``[byok] mode = "required"`` over REST: every cloud engine a call can reach — a pipeline's
STT, LLM and TTS, a speech-to-speech assistant's realtime session and the voice of what it says
verbatim (``llm_config.say_voice``), the operator's ``[speech]`` engines for what a
configuration leaves out — names a provider key of the organization or is refused (400), when
an assistant or the organization's defaults are saved and when a call is placed: a transient
assistant, an override, a campaign, an inbound number's assistant, an ``assistant-request``
answer. Nothing is dialled and no call is stored for a refused one."""

from __future__ import annotations

from typing import Any

import pytest

from api.conftest import Api, serving
from fakes.tool_server import Answer, ToolServer
from fakes.world import ACME, ACME_NUMBERS, DESTINATION, make_settings, number_id
from voicedock.api.api_keys import issue_api_key
from voicedock.config import Settings, WebhookEndpointSettings
from voicedock.domain.records import KeyScope
from voicedock.domain.webhooks import generate_secret
from voicedock.pbx.base import InboundCall

pytestmark = pytest.mark.unit

OPERATOR_OPENAI = "sk-operator-0123456789"
OPERATOR_XAI = "xai-operator-0123456789"
XAI_KEY = {"name": "my-xai", "provider": "xai", "api_key": "xai-acme-own-0123456789"}
OPENAI_KEY = {"name": "my-openai", "provider": "openai", "api_key": "sk-acme-own-0123456789"}
CALLER = "+31612345670"

# The organization's keys for xAI (its realtime session) and OpenAI (a say voice).
KEYED = {"provider": "xai_realtime", "llm_config": {"api_key_ref": "my-xai"}}
KEYED_SAY = {"api_key_ref": "my-openai", "provider": "openai", "voice": "nova"}
KEYED_BOTH = {**KEYED, "llm_config": {**KEYED["llm_config"], "say_voice": KEYED_SAY}}
LOCAL_SAY = {**KEYED, "llm_config": {**KEYED["llm_config"], "say_voice": {"provider": "piper"}}}
# An assistant of local engines only, whatever the operator's [speech] tts.
PLAIN = {"name": "Plain", "tts_config": {"provider": "piper"}}

# Speech-to-speech assistants reaching a cloud engine without a key of the organization:
# (the operator's [speech] tts, the configuration, the key the 400 names, the same with keys
# or a local voice: accepted).
NO_LLM_CONFIG = pytest.param(
    "piper", {"provider": "xai_realtime"}, "llm_config", KEYED, id="no-llm_config"
)
OFFLINE_ENGINE_NAMED = pytest.param(
    "piper",
    {"provider": "xai_realtime", "llm_config": {"provider": "rule-based"}},
    "llm_config",
    KEYED,
    id="llm_config-naming-an-offline-engine",
)
SAY_VOICE_LEFT_OUT = pytest.param(
    "openai",
    KEYED,
    "llm_config.say_voice",
    KEYED_BOTH,
    id="say_voice-left-to-the-operators-cloud-tts",
)
LOCAL_VOICE = pytest.param(
    "openai", KEYED, "llm_config.say_voice", LOCAL_SAY, id="or-a-local-say_voice"
)
UNKEYED = [NO_LLM_CONFIG, OFFLINE_ENGINE_NAMED, SAY_VOICE_LEFT_OUT, LOCAL_VOICE]
# Refused when saved before (not when placed).
WITHOUT_KEY = pytest.param(
    "piper",
    {"provider": "xai_realtime", "llm_config": {"voice": "Ara"}},
    "llm_config",
    KEYED,
    id="llm_config-without-key",
)


def required(database_url: str, tts: str = "piper") -> Settings:
    """The operator requires organizations' own keys; its [speech] has keys of its own."""
    settings = make_settings(database_url)
    settings.byok.mode = "required"
    settings.speech.tts = tts
    settings.speech.openai_api_key = OPERATOR_OPENAI
    settings.speech.openai_base_url = "http://127.0.0.1:9/v1"
    settings.speech.xai_api_key = OPERATOR_XAI
    return settings


async def post(api: Api, path: str, body: Any, key: str | None = None) -> tuple[int, Any]:
    resp = await api.client.post(path, json=body, headers=api.auth(key))
    return resp.status, await resp.json()


async def store_keys(api: Api) -> None:
    for body in (XAI_KEY, OPENAI_KEY):
        status, answer = await post(api, "/provider-keys", body)
        assert status == 201, answer


def refused(status: int, body: dict[str, Any], where: str) -> None:
    assert status == 400, body
    assert body["error"] == "Provider key required", body
    assert f"{where}.api_key_ref is required" in body["message"], body


@pytest.mark.parametrize(("tts", "config", "where", "keyed"), UNKEYED)
async def test_saving_an_assistant_that_reaches_a_cloud_engine_without_a_key_is_refused(
    database_url: str, tts: str, config: dict[str, Any], where: str, keyed: dict[str, Any]
) -> None:
    async with serving(required(database_url, tts)) as api:
        await store_keys(api)
        status, body = await post(api, "/assistants", {"name": "Realtime", **config})
        refused(status, body, where)
        status, plain = await post(api, "/assistants", PLAIN)
        assert status == 201, plain
        resp = await api.client.patch(
            f"/assistants/{plain['id']}", json={"tts_config": None, **config}, headers=api.auth()
        )
        refused(resp.status, await resp.json(), where)
        listed = await (await api.client.get("/assistants", headers=api.auth())).json()
        assert "Realtime" not in [a["name"] for a in listed["assistants"]]
        unchanged = await api.client.get(f"/assistants/{plain['id']}", headers=api.auth())
        assert (await unchanged.json())["tts_config"] == {"provider": "piper"}
        status, body = await post(api, "/assistants", {"name": "Keyed", **keyed})
        assert status == 201, body


async def test_the_organizations_defaults_name_keys_too(database_url: str) -> None:
    async with serving(required(database_url)) as api:
        await store_keys(api)
        await _defaults_name_keys(api)


async def _defaults_name_keys(api: Api) -> None:
    admin, _ = await issue_api_key(api.service.store, ACME, "ops", KeyScope.ADMIN)
    h = api.auth(admin)

    async def defaults(value: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        resp = await api.client.patch(
            "/organization", json={"assistant_defaults": value}, headers=h
        )
        return resp.status, await resp.json()

    status, body = await defaults({"provider": "xai_realtime", "llm_config": {"voice": "Ara"}})
    refused(status, body, "llm_config")
    status, body = await defaults({"tts_config": {"provider": "openai", "voice": "nova"}})
    refused(status, body, "tts_config")
    status, body = await defaults({"tts_config": {**KEYED_SAY, "api_key_ref": "nobody"}})
    assert status == 422, body
    assert "no provider key named 'nobody'" in body["message"]
    read = await (await api.client.get("/organization", headers=h)).json()
    assert read["assistant_defaults"] == {}
    # A default the assistant completes is kept; the assistant it makes is checked whole.
    status, body = await defaults({"provider": "xai_realtime"})
    assert status == 200, body
    status, body = await post(api, "/assistants", {"name": "From the defaults"})
    refused(status, body, "llm_config")
    status, body = await post(api, "/assistants", {"name": "Completed", **KEYED})
    assert status == 201, body
    status, body = await defaults({"tts_config": KEYED_SAY})
    assert status == 200, body


@pytest.mark.parametrize(("tts", "config", "where", "keyed"), [*UNKEYED, WITHOUT_KEY])
async def test_placing_a_call_that_reaches_a_cloud_engine_without_a_key_is_refused(
    database_url: str, tts: str, config: dict[str, Any], where: str, keyed: dict[str, Any]
) -> None:
    async with serving(required(database_url, tts)) as api:
        await store_keys(api)
        status, answer = await post(
            api, "/calls/outbound", {"destination": DESTINATION, "assistant": config}
        )
        refused(status, answer, where)
        campaign = {
            "name": "Reminders",
            "assistant": {"name": "Reminder", **config},
            "contacts": [{"destination": DESTINATION}],
        }
        status, answer = await post(api, "/campaigns", campaign)
        refused(status, answer, where)
        await nothing_dialled(api)

        body = {"destination": DESTINATION, "assistant": keyed}
        status, answer = await post(api, "/calls/outbound", body)
        assert status == 200, answer
        call = await api.service.store.get_call(None, answer["call_id"])
        assert call is not None  # stored with the references; the keys open in memory only
        assert call.assistant_config.llm_config == keyed["llm_config"]


# (the operator's [speech] tts, the saved assistant, the override, the key the 400 names)
OVERRIDES = [
    pytest.param("piper", {}, {"provider": "xai_realtime"}, "llm_config", id="to-realtime"),
    pytest.param(
        "piper",
        {},
        {"provider": "xai_realtime", "llm_config": {"provider": "rule-based"}},
        "llm_config",
        id="to-realtime-naming-an-offline-engine",
    ),
    pytest.param(
        "openai",
        {**KEYED, "llm_config": {**KEYED["llm_config"], "say_voice": {"provider": "piper"}}},
        {"llm_config": {"say_voice": {"provider": "openai", "voice": "nova"}}},
        "llm_config.say_voice",
        id="say_voice-to-a-cloud-tts",
    ),
]


@pytest.mark.parametrize(("tts", "saved", "override", "where"), OVERRIDES)
async def test_an_override_that_reaches_a_cloud_engine_without_a_key_is_refused(
    database_url: str, tts: str, saved: dict[str, Any], override: dict[str, Any], where: str
) -> None:
    async with serving(required(database_url, tts)) as api:
        await store_keys(api)
        status, assistant = await post(api, "/assistants", {"name": "Saved", **saved})
        assert status == 201, assistant
        body = {
            "destination": DESTINATION,
            "assistant_id": assistant["id"],
            "assistant_override": override,
        }
        status, answer = await post(api, "/calls/outbound", body)
        refused(status, answer, where)
        await nothing_dialled(api)


async def nothing_dialled(api: Api) -> None:
    assert api.pbx.originated == []
    calls = await (await api.client.get("/calls", headers=api.auth())).json()
    assert calls["calls"] == []


async def test_an_assistant_saved_before_the_operator_required_keys_is_refused_when_placed(
    database_url: str,
) -> None:
    """The operator changes ``mode`` to ``required`` and restarts: an inbound call to a number
    whose assistant reaches xAI without a key of the organization is rejected, an outbound
    call of it refused."""
    allowed = required(database_url)
    allowed.byok.mode = "allowed"
    async with serving(allowed) as api:
        status, saved = await post(
            api, "/assistants", {"name": "Realtime", "provider": "xai_realtime"}
        )
        assert status == 201, saved
        resp = await api.client.patch(
            f"/phone-numbers/{number_id(ACME_NUMBERS[1])}",
            json={"assistant_id": saved["id"]},
            headers=api.auth(),
        )
        assert resp.status == 200, await resp.text()
    async with serving(required(database_url)) as api:
        inbound = InboundCall("chan-1", CALLER, ACME_NUMBERS[1])
        assert await api.service.engine.inbound.accept(inbound) is None
        body = {"destination": DESTINATION, "assistant_id": saved["id"]}
        status, answer = await post(api, "/calls/outbound", body)
        refused(status, answer, "llm_config")
        await nothing_dialled(api)


async def test_an_assistant_request_answer_without_a_key_is_not_used(database_url: str) -> None:
    """The organization's server answers an inbound call with a transient speech-to-speech
    assistant: without a key of the organization it is not used (the number has no assistant
    of its own: the call is rejected); with one, it answers."""
    secret = generate_secret()
    answer = Answer({"assistant": {"name": "Night desk", "provider": "xai_realtime"}})
    async with ToolServer(secret, {"assistant-request": answer}) as server:
        settings = required(database_url)
        settings.egress.allow_loopback = True
        settings.webhooks.endpoints = [
            WebhookEndpointSettings(
                name="router",
                organization=ACME,
                url=server.url,
                secret=secret,
                event_types=["assistant-request"],
            )
        ]
        async with serving(settings) as api:
            await store_keys(api)
            inbound = InboundCall("chan-1", CALLER, ACME_NUMBERS[1])
            assert await api.service.engine.inbound.accept(inbound) is None
            assert len(server.received) == 1  # it was asked, its answer refused

            night = {"name": "Night desk", **KEYED}
            server.answers["assistant-request"] = Answer({"assistant": night})
            call_id = await api.service.engine.inbound.accept(inbound)
            assert call_id is not None
            call = await api.service.store.get_call(None, call_id)
            assert call is not None
            assert call.assistant_config.llm_config["api_key_ref"] == "my-xai"
