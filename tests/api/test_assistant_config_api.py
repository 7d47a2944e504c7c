"""An assistant's configuration is one typed value from the API's edge to the engine
(``domain/assistant_config.py``): every setting a client saves reads back as it was sent, and a
call placed with it (hybrid mode: an override merged key by key) carries it as that type."""

from __future__ import annotations

from typing import Any

import pytest

from api.conftest import Api
from fakes.world import DESTINATION
from voicedock.domain.assistant_config import AssistantConfig, Keypad, LlmFiller, ToolFiller

pytestmark = pytest.mark.unit

EVERY_SETTING: dict[str, Any] = {
    "first_message": "Hello, Acme desk.",
    "system_prompt": "Be brief.",
    "llm_config": {"messages": [{"role": "system", "content": "We open at nine."}]},
    "facts": {"hours": "9-17"},
    "silence_timeout_seconds": 30,
    "max_duration_seconds": 600,
    "media_format": "slin16",
    "tools": [{"type": "end_call"}],
    "tool_filler": {"message": "One moment.", "delay_seconds": 2.5},
    "llm_filler": {"delay_seconds": 1.5, "messages": ["Hm."]},
    "keypad": {"terminator": None, "max_digits": 4},
    "analysis_plan": {"summary_prompt": "Summarize the call."},
    "assistant_request": {"timeout_seconds": 3},
    "record": True,
    "voicemail_detection": "detect",
    "voicemail_message": "Please call us back.",
    "silence_prompt_seconds": 10,
    "silence_prompt_message": "Still there?",
    "dead_air_seconds": 3,
    "dead_air_message": "One second.",
    "turn_detection": "silence",
    "barge_in_on_words": True,
    "noise_suppression": True,
}


async def test_every_setting_reads_back_and_a_call_carries_it_typed(api: Api) -> None:
    created = await api.client.post(
        "/assistants", json={"name": "Desk", **EVERY_SETTING}, headers=api.auth()
    )
    assert created.status == 201, await created.text()
    assistant_id = (await created.json())["id"]
    read = await (await api.client.get(f"/assistants/{assistant_id}", headers=api.auth())).json()
    assert {key: read[key] for key in EVERY_SETTING} == EVERY_SETTING

    override = {"first_message": "Hi Ann.", "keypad": {"max_digits": 6}}
    placed = await api.client.post(
        "/calls/outbound",
        json={
            "destination": DESTINATION,
            "assistant_id": assistant_id,
            "assistant_override": override,
        },
        headers=api.auth(),
    )
    assert placed.status == 200, await placed.text()
    call = await api.service.store.get_call(None, (await placed.json())["call_id"])
    assert call is not None
    config = call.assistant_config
    assert isinstance(config, AssistantConfig)
    assert config.first_message == "Hi Ann."  # the override's
    assert config.keypad == Keypad(terminator=None, max_digits=6)  # merged key by key
    assert config.tool_filler == ToolFiller(message="One moment.", delay_seconds=2.5)
    assert config.llm_filler == LlmFiller(delay_seconds=1.5, messages=["Hm."])
    assert (config.media_format, config.record, config.dead_air_seconds) == ("slin16", True, 3)
    assert config.turn_detection == "silence"
    assert config.barge_in_on_words is True
    assert config.noise_suppression is True
    assert isinstance(config.llm_config, dict)
    assert config.llm_config["messages"] == EVERY_SETTING["llm_config"]["messages"]
    assert isinstance(config.stt_config, dict)  # the provider rules completed the sections
    assert config.stt_config["provider"] == api.service.settings.speech.stt


async def test_barge_in_on_words_is_true_or_false(api: Api) -> None:
    refused = await api.client.post(
        "/assistants", json={"name": "Desk", "barge_in_on_words": "yes"}, headers=api.auth()
    )
    assert refused.status == 400
    assert "barge_in_on_words" in (await refused.json())["message"]


async def test_turn_detection_is_model_or_silence(api: Api) -> None:
    refused = await api.client.post(
        "/assistants", json={"name": "Desk", "turn_detection": "vibes"}, headers=api.auth()
    )
    assert refused.status == 400
    assert "turn_detection" in (await refused.json())["message"]
    created = await api.client.post(
        "/assistants", json={"name": "Desk", "turn_detection": "model"}, headers=api.auth()
    )
    assert created.status == 201, await created.text()
    assert (await created.json())["turn_detection"] == "model"
