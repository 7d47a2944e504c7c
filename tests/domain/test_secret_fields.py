"""A stored secret goes only where it went (``secret_fields.check_secrets_stay``): kept (sent
back masked, or left out of what merges with the stored configuration) while its section's
provider or URL changes, it is a 422 naming it; given again in clear, it may go anywhere."""

from __future__ import annotations

import pytest

from voicedock.domain.json import JsonObject
from voicedock.domain.secret_fields import check_secrets_stay, mask
from voicedock.errors import Unprocessable

pytestmark = pytest.mark.unit

KEY = "sk-stored-key-0123456789"
SAY_KEY = "el-stored-key-9876543210"
STORED: JsonObject = {
    "provider": "openai",
    "llm_config": {"base_url": "https://llm.example/v1", "api_key": KEY},
    "tts_config": {"provider": "elevenlabs", "api_key": SAY_KEY},
}


def refusal(given: JsonObject, config: JsonObject) -> str | None:
    try:
        check_secrets_stay(given, config, STORED)
    except Unprocessable as refused:
        return refused.message.split(" ", 1)[0]
    return None


def test_the_same_endpoint_keeps_its_key() -> None:
    masked = {"llm_config": {"base_url": "https://llm.example/v1", "api_key": mask(KEY)}}
    assert refusal(masked, STORED) is None
    assert refusal({}, STORED) is None


def test_another_url_or_provider_takes_the_key_again() -> None:
    moved = {**STORED, "llm_config": {"base_url": "https://elsewhere.example/v1", "api_key": KEY}}
    assert refusal({"llm_config": {"api_key": mask(KEY)}}, moved) == "llm_config.api_key"
    assert refusal({"llm_config": {"base_url": "x"}}, moved) == "llm_config.api_key"  # left out
    assert refusal({"llm_config": {"api_key": KEY}}, moved) is None  # given again in clear
    # The assistant's provider is the LLM section's endpoint too (a PATCH naming only it).
    assert refusal({"provider": "mistral"}, {**STORED, "provider": "mistral"}) == (
        "llm_config.api_key"
    )
    other_tts = {**STORED, "tts_config": {"provider": "openai", "api_key": SAY_KEY}}
    assert refusal({"tts_config": {"provider": "openai"}}, other_tts) == "tts_config.api_key"


def test_without_a_stored_configuration_nothing_is_kept() -> None:
    check_secrets_stay({}, STORED, None)
