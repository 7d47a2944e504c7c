"""Function calling on the OpenAI-compatible path, against the local stand-in: the tools go
in the request, the streamed ``delta.tool_calls`` fragments come back as whole ``ToolCall``s,
and tool calls and results in the context are sent as the API takes them."""

from __future__ import annotations

import json

import pytest

from fakes.llm_standin import LlmStandIn, ToolCalls
from voicedock.pipeline.frames import ChatMessage, ToolCall
from voicedock.pipeline.providers.openai_compat import OpenAiCompatLlm
from voicedock.pipeline.tools import ToolSpec

pytestmark = pytest.mark.unit

LOOKUP = ToolSpec(
    "lookup_order",
    "Find an order.",
    {"type": "object", "properties": {"number": {"type": "string"}}},
)


async def test_streamed_tool_calls_are_assembled_after_the_text() -> None:
    reply = ToolCalls((("lookup_order", {"number": "A-17"}), ("end_call", {})), text="Let me see.")
    async with LlmStandIn(reply=reply) as standin:
        llm = OpenAiCompatLlm(model="m", base_url=standin.base_url)
        try:
            items = [i async for i in llm.stream_with_tools([ChatMessage("user", "Hi")], [LOOKUP])]
        finally:
            await llm.aclose()
    text = "".join(i for i in items if isinstance(i, str))
    calls = [i for i in items if isinstance(i, ToolCall)]
    assert text == "Let me see."
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("lookup_order", {"number": "A-17"}),
        ("end_call", {}),
    ]
    assert calls[0].id != calls[1].id
    (request,) = standin.requests
    assert request.tools == [LOOKUP.openai_tool()]
    assert request.tools[0]["function"]["description"] == "Find an order."


async def test_tool_calls_and_results_are_sent_back_in_the_context() -> None:
    call = ToolCall("call_1", "lookup_order", '{"number": "A-17"}')
    context = [
        ChatMessage("user", "Where is my order?"),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", '{"status": "shipped"}', tool_call_id="call_1"),
    ]
    async with LlmStandIn(reply="It has shipped.") as standin:
        llm = OpenAiCompatLlm(model="m", base_url=standin.base_url)
        try:
            said = [i async for i in llm.stream_with_tools(context, [LOOKUP])]
        finally:
            await llm.aclose()
    assert "".join(str(i) for i in said) == "It has shipped."
    sent = standin.requests[0].messages
    assert sent[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup_order", "arguments": '{"number": "A-17"}'},
            }
        ],
    }
    assert sent[2] == {"role": "tool", "content": '{"status": "shipped"}', "tool_call_id": "call_1"}


async def test_plain_stream_ignores_tool_calls_and_offers_no_tools() -> None:
    async with LlmStandIn(reply=ToolCalls((("end_call", {}),), text="Bye.")) as standin:
        llm = OpenAiCompatLlm(model="m", base_url=standin.base_url)
        try:
            said = [t async for t in llm.stream([ChatMessage("user", "Hi")])]
        finally:
            await llm.aclose()
    assert "".join(said) == "Bye."
    assert standin.requests[0].tools is None
