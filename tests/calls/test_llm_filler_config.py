"""An assistant's ``llm_filler``: checked where it is given (400 with the error body), and
what it asks of a call's dialogue."""

from __future__ import annotations

from typing import Any

import pytest

from voicedock.calls.assistants.config import check_config, deep_merge
from voicedock.calls.live.config import conversation_config
from voicedock.domain.assistant_config import DEFAULT_LLM_FILLER_MESSAGES as DEFAULT_PHRASES
from voicedock.domain.assistant_config import config_of
from voicedock.errors import BadRequest

pytestmark = pytest.mark.unit

BAD = [
    ({"llm_filler": "yes"}, "llm_filler must be a JSON object"),
    ({"llm_filler": {"delay": 1}}, "llm_filler: unknown field"),
    ({"llm_filler": {"delay_seconds": 11}}, "llm_filler.delay_seconds must be a number"),
    ({"llm_filler": {"delay_seconds": -1}}, "llm_filler.delay_seconds must be a number"),
    ({"llm_filler": {"delay_seconds": True}}, "llm_filler.delay_seconds must be a number"),
    ({"llm_filler": {"delay_seconds": "1"}}, "llm_filler.delay_seconds must be a number"),
    ({"llm_filler": {"messages": []}}, "llm_filler.messages must be a list of 1-10 texts"),
    ({"llm_filler": {"messages": "Hm."}}, "llm_filler.messages must be a list"),
    ({"llm_filler": {"messages": ["Hm.", " "]}}, "llm_filler.messages must be a list"),
    ({"llm_filler": {"messages": ["x" * 201]}}, "of at most 200 characters"),
    ({"llm_filler": {"messages": ["Hm."] * 11}}, "llm_filler.messages must be a list"),
]


def test_a_valid_filler_is_kept() -> None:
    given = {"llm_filler": {"delay_seconds": 1.2, "messages": [" Let me see. ", "Hm."]}}
    checked = check_config(given, "assistant", allow_profile=False)
    assert checked == {"llm_filler": {"delay_seconds": 1.2, "messages": ["Let me see.", "Hm."]}}
    assert check_config({"llm_filler": None}, "assistant", allow_profile=False) == {}


@pytest.mark.parametrize(("body", "message"), BAD)
def test_a_bad_filler_is_refused_naming_the_field(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        check_config(body, "assistant", allow_profile=False)


def test_the_filler_reaches_the_dialogue_and_is_off_unless_asked_for() -> None:
    assert conversation_config(config_of({}), 8000).llm_filler_delay_s is None
    default = conversation_config(config_of({"llm_filler": {}}), 8000)
    assert (default.llm_filler_delay_s, default.llm_filler_messages) == (1.2, DEFAULT_PHRASES)
    own = conversation_config(
        config_of({"llm_filler": {"delay_seconds": 2, "messages": ["Hm."]}}), 8000
    )
    assert (own.llm_filler_delay_s, own.llm_filler_messages) == (2.0, ("Hm.",))
    # A call's override turns a saved assistant's filler off with a null delay.
    saved = {"llm_filler": {"delay_seconds": 1.5, "messages": ["Hm."]}}
    override = check_config({"llm_filler": {"delay_seconds": None}}, "o", allow_profile=False)
    assert (
        conversation_config(config_of(deep_merge(saved, override)), 8000).llm_filler_delay_s is None
    )
