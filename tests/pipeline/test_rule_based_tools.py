"""The offline rule-based policy calls the built-in tools on clear phrases (rules, not AI)."""

from __future__ import annotations

import json

import pytest

from voicedock.calls.tools.config import assistant_tools, check_tools, tool_specs
from voicedock.domain.assistant_config import config_of
from voicedock.pipeline.frames import ChatMessage, ToolCall
from voicedock.pipeline.providers.rule_based import RuleBasedPolicy

pytestmark = pytest.mark.unit

TOOLS = tool_specs(
    assistant_tools(
        config_of(
            {
                "tools": check_tools(
                    [
                        {"type": "end_call"},
                        {"type": "transfer_call", "destinations": ["sales", "support"]},
                        {"type": "send_dtmf"},
                    ]
                )
            }
        )
    )
)


async def reply(said: str, tools: object = TOOLS) -> tuple[str, list[ToolCall]]:
    policy = RuleBasedPolicy()
    items = [i async for i in policy.stream_with_tools([ChatMessage("user", said)], tools)]  # type: ignore[arg-type]
    text = "".join(i for i in items if isinstance(i, str))
    return text, [i for i in items if isinstance(i, ToolCall)]


@pytest.mark.parametrize(
    ("said", "name", "arguments"),
    [
        ("Okay, goodbye.", "end_call", {}),
        ("Could you transfer me to sales please?", "transfer_call", {"destination": "sales"}),
        ("I want to speak to someone in support.", "transfer_call", {"destination": "support"}),
        ("Press 1, 2 and then #", "send_dtmf", {"digits": "12"}),
        ("press 4 7 2 1 #", "send_dtmf", {"digits": "4721#"}),
    ],
)
async def test_clear_phrases_call_the_built_ins(said: str, name: str, arguments: object) -> None:
    _, calls = await reply(said)
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [(name, arguments)]


async def test_a_goodbye_is_said_before_the_call_ends() -> None:
    text, _ = await reply("That's all, bye.")
    assert text == "Thank you for calling. Goodbye!"


async def test_an_unknown_destination_or_no_tools_is_a_plain_reply() -> None:
    text, calls = await reply("Transfer me to the moon.")
    assert calls == []
    assert text.startswith("I understood:")
    text, calls = await reply("Goodbye.", ())
    assert (text, calls) == ("Thank you for calling. Goodbye!", [])


async def test_after_a_tool_result_it_says_done() -> None:
    policy = RuleBasedPolicy()
    context = [ChatMessage("user", "press 1"), ChatMessage("tool", "Pressed 1.", tool_call_id="x")]
    assert [i async for i in policy.stream_with_tools(context, TOOLS)] == ["Done."]
