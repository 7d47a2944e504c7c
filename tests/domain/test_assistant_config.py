"""One place says what an organization may set in an assistant's configuration: the fields of
``AssistantConfig`` (``domain/assistant_config.py``). The check (``check_config``) and the
API's documented model take their list from it, and a checked configuration is its type."""

from __future__ import annotations

import pytest

from voicedock.api.models.assistants import SETTINGS
from voicedock.calls.assistants.config import PROFILE_FIELDS, check_config
from voicedock.domain.assistant_config import (
    CONFIG_FIELDS,
    HANG_UP_AFTER_FIRST_MESSAGE,
    AssistantConfig,
    config_json,
    config_of,
)
from voicedock.errors import BadRequest

pytestmark = pytest.mark.unit


def test_the_api_documents_what_the_type_holds() -> None:
    assert set(SETTINGS) == {*CONFIG_FIELDS, *PROFILE_FIELDS}
    assert set(AssistantConfig.__struct_fields__) == {*CONFIG_FIELDS, HANG_UP_AFTER_FIRST_MESSAGE}


def test_voicedocks_own_setting_is_not_the_organizations() -> None:
    with pytest.raises(BadRequest, match=HANG_UP_AFTER_FIRST_MESSAGE):
        check_config({HANG_UP_AFTER_FIRST_MESSAGE: True}, "body", allow_profile=False)


def test_a_checked_configuration_is_its_type_and_back() -> None:
    sent = {
        "provider": "openai",
        "stt_config": {"provider": "openai", "model": "whisper-1"},
        "tts_config": {"provider": "openai", "voice": "alloy"},
        "keypad": {"terminator": None},
        "llm_filler": {"delay_seconds": None},
        "tools": [{"type": "end_call"}],
    }
    checked = check_config(sent, "body", allow_profile=False)
    assert config_json(config_of(checked)) == checked == sent
