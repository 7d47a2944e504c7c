"""The model's tool calls (``pipeline/dialogue/tool_calls.py``): the tool filler when one runs
long, ``end_call`` the dialogue's own."""

from __future__ import annotations

import asyncio
import logging

import pytest

from voicedock.aio import Supervisor
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.events import CallEvents, ToolCalled
from voicedock.pipeline.dialogue.tool_calls import ENDING, ToolCalls
from voicedock.pipeline.frames import ToolCall
from voicedock.pipeline.tools import ToolResult

pytestmark = pytest.mark.unit


class SlowTool:
    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.ran: list[str] = []

    async def run(self, call: ToolCall) -> ToolResult:
        self.ran.append(call.name)
        await asyncio.sleep(self.delay_s)
        return ToolResult("done")


async def test_a_slow_tool_brings_the_filler_and_end_call_is_the_dialogues() -> None:
    executor = SlowTool(0.2)
    config = ConversationConfig(tool_filler_message="Hold on.", tool_filler_delay_s=0.05)
    events, told = CallEvents(), []
    events.subscribe(ToolCalled, told.append)
    async with Supervisor("test", logging.getLogger("test")) as tasks:
        tools = ToolCalls(executor, tasks, config, events)
        lookup = ToolCall("c1", "lookup", "{}")
        slow = tools.start(lookup)
        assert slow is not None
        assert await tools.filler_due(lookup, slow) == "Hold on."
        assert await slow == ToolResult("done")
        end_call = ToolCall("c2", "end_call", "{}")
        ending = tools.start(end_call)
        assert ending is not None
        assert await tools.filler_due(end_call, ending) is None
        assert await ending == ENDING
    assert executor.ran == ["lookup"]  # end_call never reaches the executor
    # Each call carried out is told once it is done, the slow one with how long it took.
    assert [(t.name, t.failed) for t in told] == [("lookup", False), ("end_call", False)]
    assert told[0].ms >= 200


async def test_a_failing_tool_is_told_as_failed() -> None:
    events, told = CallEvents(), []
    events.subscribe(ToolCalled, told.append)
    async with Supervisor("test", logging.getLogger("test")) as tasks:
        tools = ToolCalls(None, tasks, ConversationConfig(), events)  # no executor: it fails
        task = tools.start(ToolCall("c1", "lookup", "{}"))
        assert task is not None
        assert (await task).error
    assert [(t.name, t.failed) for t in told] == [("lookup", True)]


class PromptingTool(SlowTool):
    """A tool that speaks as it starts (``SpeakingTools``), as a secure keypad entry does."""

    def spoken(self, call: ToolCall) -> str | None:
        return "Your card number, please." if call.name == "card_number" else None


async def test_a_tool_that_speaks_is_heard_at_once_instead_of_the_filler() -> None:
    config = ConversationConfig(tool_filler_message="Hold on.", tool_filler_delay_s=0.05)
    async with Supervisor("test", logging.getLogger("test")) as tasks:
        tools = ToolCalls(PromptingTool(0.2), tasks, config, CallEvents())
        call = ToolCall("c1", "card_number", "{}")
        entry = tools.start(call)
        assert entry is not None
        assert await tools.filler_due(call, entry) == "Your card number, please."
        assert not entry.done()  # said as it starts, not once it is late
        assert await entry == ToolResult("done")
        other = ToolCall("c2", "lookup", "{}")
        lookup = tools.start(other)
        assert lookup is not None
        assert await tools.filler_due(other, lookup) == "Hold on."
