"""An assistant's plans: what ``check_config`` stores is what a call reads, as the model the
API documents (``domain/assistant_config.py``)."""

from __future__ import annotations

import pytest
from msgspec import UNSET

from voicedock.api.models import assistants as api_models
from voicedock.calls.assistants.config import check_config
from voicedock.calls.live.config import conversation_config, keypad_plan
from voicedock.domain import assistant_config as plans
from voicedock.domain.assistant_config import (
    AssistantRequest,
    Keypad,
    LlmFiller,
    ToolFiller,
    config_of,
)
from voicedock.pipeline.hearing.keypad import KeypadPlan

pytestmark = pytest.mark.unit


def test_the_api_documents_the_plans_a_call_reads() -> None:
    for model in (ToolFiller, LlmFiller, Keypad, AssistantRequest):
        assert getattr(api_models, model.__name__) is getattr(plans, model.__name__)


@pytest.mark.parametrize(
    ("key", "sent", "model"),
    [
        ("tool_filler", {"message": " One moment. ", "delay_seconds": 0}, ToolFiller),
        ("llm_filler", {"delay_seconds": None}, LlmFiller),
        ("llm_filler", {"delay_seconds": 2, "messages": [" Hm. "]}, LlmFiller),
        ("keypad", {"enabled": False, "terminator": None, "max_digits": 4}, Keypad),
        ("keypad", {"timeout_seconds": 2.5, "terminator": "*"}, Keypad),
        ("assistant_request", {}, AssistantRequest),
    ],
)
def test_a_checked_plan_is_read_as_its_model(key: str, sent: object, model: type) -> None:
    stored = check_config({key: sent}, "body", allow_profile=False)[key]
    read = getattr(config_of({key: stored}), key)
    assert read is not None
    assert {f: v for f in model.__struct_fields__ if (v := getattr(read, f)) is not UNSET} == stored


def test_a_call_reads_its_plans_with_their_defaults() -> None:
    default = KeypadPlan()
    assert keypad_plan(None, default) is default
    assert keypad_plan(Keypad(terminator=None), default) == KeypadPlan(terminator=None)
    assert keypad_plan(Keypad(enabled=False), KeypadPlan()) == KeypadPlan(enabled=False)
    dialogue = conversation_config(config_of({"tool_filler": {"delay_seconds": 0}}), 8000)
    assert dialogue.tool_filler_delay_s == 0.0  # zero is a delay, not "left out"
    assert (
        conversation_config(
            config_of({"llm_filler": {"delay_seconds": None}}), 8000
        ).llm_filler_delay_s
        is None
    )
    assert conversation_config(config_of({"llm_filler": {}}), 8000).llm_filler_delay_s == 1.2
