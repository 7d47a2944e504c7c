"""Fallback plans over REST: each engine's ``fallback_plan`` is saved and read back as given,
each entry checked as its section is (the 400 names the entry's key), an entry has no plan of
its own, at most three entries, none for a speech-to-speech session."""

from __future__ import annotations

from typing import Any

import pytest

from api.conftest import Api

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


async def test_a_speech_to_speech_session_takes_no_plan(api: Api) -> None:
    resp = await api.client.post(
        "/assistants",
        json={
            "name": "Rex",
            "provider": "xai_realtime",
            "llm_config": {"fallback_plan": [{"provider": "openai"}]},
        },
        headers=api.auth(),
    )
    assert resp.status == 400
    assert "llm_config.fallback_plan is not a setting" in (await resp.json())["message"]
