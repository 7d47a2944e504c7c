"""The ``tools`` and ``analysis_plan`` of an assistant configuration: strict shapes (400s
naming the field), and what the model is offered for the built-ins."""

from __future__ import annotations

from typing import Any

import pytest

from voicedock.calls.assistants.config import check_config
from voicedock.calls.tools.config import assistant_tools, check_tools
from voicedock.domain.assistant_config import config_of
from voicedock.errors import BadRequest

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("tools", "message"),
    [
        ({"name": "x"}, "tools must be a list"),
        ([{"type": "hold"}], "tools[0].type"),
        ([{"description": "no name"}], "tools[0].name is required"),
        ([{"name": "bad name!"}], "tools[0].name"),
        ([{"name": "a", "parameters": {"type": "string"}}], "tools[0].parameters"),
        ([{"name": "a", "server": {"url": "ftp://x"}}], "tools[0].server.url"),
        ([{"name": "a", "timeout_seconds": 0}], "timeout_seconds"),
        ([{"type": "transfer_call"}], "tools[0].destinations"),
        ([{"type": "send_dtmf", "digits": "1"}], "digits"),
    ],
)
def test_bad_tools_are_refused_naming_the_field(tools: Any, message: str) -> None:
    with pytest.raises(BadRequest, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_tools(tools)


def test_two_tools_of_one_name_are_a_bad_request() -> None:
    """Each tool is valid (the schema's part): the list offers the model one name twice, the
    request's own content: 400 (it was 422)."""
    with pytest.raises(BadRequest, match="same name") as refused:
        check_tools([{"name": "a"}, {"name": "a"}])
    assert refused.value.error == "Duplicate tool name"


def test_built_ins_get_their_name_description_and_parameters() -> None:
    config = {
        "tools": check_tools(
            [
                {"type": "transfer_call", "destinations": ["sales", "+31201234567"]},
                {"type": "send_dtmf"},
                {"type": "end_call", "description": "Hang up politely."},
                {"name": "lookup", "server": {"url": "https://crm.example.com/t"}},
            ]
        )
    }
    transfer, dtmf, end, lookup = assistant_tools(config_of(config))
    assert transfer.spec.name == "transfer_call"
    assert transfer.spec.parameters["properties"]["destination"]["enum"] == [
        "sales",
        "+31201234567",
    ]
    assert transfer.mode == "blind"
    assert dtmf.spec.parameters["required"] == ["digits"]
    assert end.spec.description == "Hang up politely."
    assert (lookup.type, lookup.url, lookup.timeout_s) == (
        "webhook",
        "https://crm.example.com/t",
        20,
    )


def test_analysis_plan_needs_a_valid_json_schema() -> None:
    good = {"structured_data_schema": {"type": "object"}, "summary_prompt": "Be brief."}
    assert check_config({"analysis_plan": good}, "body", allow_profile=False) == {
        "analysis_plan": good
    }
    with pytest.raises(BadRequest, match="not a JSON Schema"):
        check_config(
            {"analysis_plan": {"structured_data_schema": {"type": "nothing"}}},
            "body",
            allow_profile=False,
        )
    with pytest.raises(BadRequest, match="analysis_plan"):
        check_config({"analysis_plan": {"rubric": "x"}}, "body", allow_profile=False)


def test_assistant_request_takes_a_bounded_timeout() -> None:
    checked = check_config({"assistant_request": {}}, "body", allow_profile=False)
    assert checked == {"assistant_request": {"timeout_seconds": 5}}
    with pytest.raises(BadRequest, match="timeout_seconds"):
        check_config({"assistant_request": {"timeout_seconds": 60}}, "body", allow_profile=False)


def test_the_filler_and_the_tools_reach_the_dialogue_settings() -> None:
    from voicedock.calls.live.config import conversation_config

    config = check_config(
        {
            "tools": [{"type": "end_call"}],
            "tool_filler": {"message": "Hang on.", "delay_seconds": 0.5},
        },
        "body",
        allow_profile=False,
    )
    dialogue = conversation_config(config_of(config), 8000)
    assert [t.name for t in dialogue.tools] == ["end_call"]
    assert (dialogue.tool_filler_message, dialogue.tool_filler_delay_s) == ("Hang on.", 0.5)
    silent = conversation_config(config_of({"tool_filler": {"message": ""}}), 8000)
    assert silent.tool_filler_message is None
    with pytest.raises(BadRequest, match="delay_seconds"):
        check_config({"tool_filler": {"delay_seconds": 60}}, "body", allow_profile=False)
