"""Fallback plans over REST: each engine's ``fallback_plan`` is saved and read back as given,
each entry checked as its section is (the 400 names the entry's key), an entry has no plan of
its own, at most three entries; a speech-to-speech session's plan names the pipeline it goes on
with, checked as a pipeline assistant's sections are."""

from __future__ import annotations

from typing import Any

import pytest

from api.conftest import Api
from fakes.world import DESTINATION

pytestmark = pytest.mark.unit

PLAN = {
    "llm_config": {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "fallback_plan": [
            {"provider": "mistral", "model": "mistral-small-latest"},
            {"provider": "offline", "greeting": "Hello."},
        ],
    },
    "stt_config": {"provider": "deepgram", "fallback_plan": [{"provider": "offline"}]},
    "tts_config": {
        "provider": "openai",
        "voice": "alloy",
        "fallback_plan": [{"provider": "piper"}],
    },
}


async def create(api: Api, config: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    resp = await api.client.post(
        "/assistants", json={"name": "Desk", "provider": "openai", **config}, headers=api.auth()
    )
    return resp.status, await resp.json()


async def test_each_engines_plan_is_saved_and_read_back(api: Api) -> None:
    status, body = await create(api, PLAN)
    assert status == 201, body
    for section in ("llm_config", "stt_config", "tts_config"):
        assert body[section]["fallback_plan"] == PLAN[section]["fallback_plan"]


@pytest.mark.parametrize(
    ("section", "plan", "message"),
    [
        (
            "stt_config",
            [{"provider": "offline", "model_path": "/etc"}],
            "stt_config.fallback_plan[0].model_path is set by the operator, not per assistant",
        ),
        (
            "llm_config",
            [{"provider": "mistral", "temperature": 9}],
            "llm_config.fallback_plan[0].temperature",
        ),
        (
            "llm_config",
            [{"provider": "mistral", "fallback_plan": [{"provider": "offline"}]}],
            "llm_config.fallback_plan[0].fallback_plan: a fallback entry has no plan of its own",
        ),
        (
            "tts_config",
            [{"provider": "piper"}] * 4,
            "tts_config.fallback_plan must be a list of 1 to 3 sections",
        ),
        (
            "tts_config",
            [{"voice": "alloy"}],
            "tts_config.fallback_plan[0] must be a section naming its provider",
        ),
    ],
)
async def test_a_bad_entry_is_a_400_naming_it(
    api: Api, section: str, plan: list[dict[str, Any]], message: str
) -> None:
    status, body = await create(api, {section: {**PLAN[section], "fallback_plan": plan}})
    assert status == 400, body
    assert message in body["message"]


# A speech-to-speech assistant's plan: the pipeline it goes on with when its session fails.
REALTIME_PLAN = {
    "provider": "xai_realtime",
    "llm_config": {
        "voice": "Rex",
        "say_voice": {"provider": "openai", "voice": "nova"},
        "fallback_plan": [{"provider": "openai"}, {"provider": "offline"}],
    },
    "stt_config": {"provider": "deepgram", "fallback_plan": [{"provider": "offline"}]},
    "tts_config": {"provider": "openai", "voice": "alloy"},
}


async def test_a_speech_to_speech_session_names_the_pipeline_it_goes_on_with(api: Api) -> None:
    status, body = await create(api, REALTIME_PLAN)
    assert status == 201, body
    for section in ("llm_config", "stt_config", "tts_config"):
        assert body[section] == REALTIME_PLAN[section]
    # A call stores it resolved as a pipeline's: the cloud LLM gets its default model.
    call = {"destination": DESTINATION, "assistant_id": body["id"]}
    resp = await api.client.post("/calls/outbound", json=call, headers=api.auth())
    assert resp.status == 200, await resp.text()
    placed = await api.service.store.get_call(None, (await resp.json())["call_id"])
    assert placed is not None
    assert placed.assistant_config.llm_config["fallback_plan"] == [
        {"provider": "openai", "model": "gpt-4o-mini"},
        {"provider": "offline"},
    ]
    # Without them, the operator's STT and the session's say_voice complete the pipeline.
    llm_config = REALTIME_PLAN["llm_config"]
    status, body = await create(api, {"provider": "xai_realtime", "llm_config": llm_config})
    assert status == 201, body


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        (  # the pipeline's speech sections are only for its plan
            {"llm_config": {"voice": "Rex"}},
            400,
            "omit stt_config and tts_config (they only complete the pipeline of "
            "llm_config.fallback_plan)",
        ),
        (
            {"llm_config": {"fallback_plan": [{"provider": "openai", "temperature": 9}]}},
            400,
            "llm_config.fallback_plan[0].temperature",
        ),
        (
            {"llm_config": {"fallback_plan": [{"provider": "openai", "url": "wss://x.example"}]}},
            400,
            "llm_config.fallback_plan[0].url is not a setting of the openai LLM",
        ),
        (
            {"llm_config": {"fallback_plan": [{"provider": "nope"}]}},
            400,
            "llm_config.fallback_plan[0].provider 'nope' is not one of",
        ),
        (  # the operator's egress rules: the organization's LLM receives the transcript
            {
                "llm_config": {
                    "fallback_plan": [
                        {
                            "provider": "openai-compatible",
                            "base_url": "http://10.1.2.3/v1",
                            "api_key": "sk-own",
                        }
                    ]
                }
            },
            400,
            "llm_config.fallback_plan[0].base_url",
        ),
        ({"tts_config": {"provider": "openai", "voice": "nobody"}}, 400, "tts_config.voice"),
        (
            {"stt_config": {"provider": "offline", "model_path": "/etc"}},
            400,
            "stt_config.model_path is set by the operator",
        ),
        (
            {"llm_config": {"fallback_plan": [{"provider": "openai", "api_key_ref": "none"}]}},
            422,
            "llm_config.fallback_plan[0].api_key_ref: no provider key named 'none'",
        ),
    ],
)
async def test_a_speech_to_speech_plan_is_checked_as_a_pipeline_is(
    api: Api, change: dict[str, Any], status: int, message: str
) -> None:
    config: dict[str, Any] = {**REALTIME_PLAN, **change}
    got, body = await create(api, config)
    assert got == status, body
    assert message in body["message"]
