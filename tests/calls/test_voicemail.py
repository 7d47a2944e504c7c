"""What an assistant's voicemail settings ask of a call, and how they are validated."""

from __future__ import annotations

import pytest

from voicedock.calls.assistants.config import check_config
from voicedock.calls.live.config import conversation_config
from voicedock.calls.voicemail import DETECT, LEAVE_MESSAGE, voicemail_settings
from voicedock.domain.assistant_config import config_of
from voicedock.errors import BadRequest

pytestmark = pytest.mark.unit


def test_only_outbound_calls_are_screened() -> None:
    config = {"voicemail_detection": DETECT, "first_message": "Hi."}
    assert voicemail_settings(config_of(config), outbound=False) is None
    assert voicemail_settings(config_of({"voicemail_detection": "off"}), outbound=True) is None
    assert voicemail_settings(config_of({}), outbound=True) is None
    detect = voicemail_settings(config_of(config), outbound=True)
    assert detect is not None
    assert (detect.mode, detect.message) == (DETECT, None)


def test_the_message_left_defaults_to_the_first_message() -> None:
    config = {"voicemail_detection": LEAVE_MESSAGE, "first_message": "Hi, city library."}
    leave = voicemail_settings(config_of(config), outbound=True)
    assert leave is not None
    assert leave.message == "Hi, city library."
    own = voicemail_settings(
        config_of({**config, "voicemail_message": "Call us back."}), outbound=True
    )
    assert own is not None
    assert own.message == "Call us back."


def test_new_assistant_fields_are_checked() -> None:
    fields = {
        "record": True,
        "voicemail_detection": LEAVE_MESSAGE,
        "voicemail_message": "Call us back.",
        "screening_message": "Hi, this is the city library about your book.",
        "silence_prompt_seconds": 8,
        "silence_prompt_message": "Still there?",
        "dead_air_seconds": 2,
        "dead_air_message": "Just a second.",
    }
    assert check_config(fields, "assistant", allow_profile=False) == fields
    for bad in (
        {"record": "yes"},
        {"voicemail_detection": "maybe"},
        {"silence_prompt_seconds": 1},
        {"dead_air_seconds": 31},
        {"screening_message": 7},
    ):
        with pytest.raises(BadRequest):
            check_config(bad, "assistant", allow_profile=False)


def test_silence_prompt_and_dead_air_reach_the_conversation() -> None:
    config = conversation_config(
        config_of(
            {
                "silence_prompt_seconds": 8,
                "silence_prompt_message": "Still there?",
                "dead_air_seconds": 2,
                "dead_air_message": "Just a second.",
            }
        ),
        8000,
    )
    assert config.endpointing.silence_prompt_ms == 8000
    assert config.silence_prompt_message == "Still there?"
    assert config.dead_air_s == 2.0
    assert config.dead_air_message == "Just a second."
    default = conversation_config(config_of({}), 8000)
    assert default.endpointing.silence_prompt_ms is None
    assert default.dead_air_s is None
