"""Tools on a speech-to-speech call: the session offers the assistant's tools, the model's
function call is carried out and its result sent back (``function_call_output``), and the
model's ``end_call`` ends the call after what is being said."""

from __future__ import annotations

import asyncio

import pytest

from calls.test_runner_realtime import (
    KEY,
    World,
    answered_realtime_call,
    caller_speech,
    dialogue,
    until,
    world,
)
from fakes.calls import call_finished
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.frames import ToolCall
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.tools import ToolResult, ToolSpec

pytestmark = pytest.mark.unit

__all__ = ["world"]  # the fixture


async def test_the_models_end_call_is_carried_out_and_recorded(world: World) -> None:
    world.script.turn_after_frames = 10
    world.script.function_call = ("end_call", {})
    llm_config = {"url": world.realtime_url, "api_key": KEY}
    call_id = await answered_realtime_call(world, llm_config, tools=[{"type": "end_call"}])
    await until(lambda: bool(world.sent("session.update")))
    (update,) = world.sent("session.update")
    assert [t["name"] for t in update["session"]["tools"]] == ["end_call"]
    assert update["session"]["tools"][0]["type"] == "function"
    channel = world.fake.channel()
    for frame in caller_speech(10):
        await channel.ws.send_bytes(frame)
        await asyncio.sleep(0.02)
    async with asyncio.timeout(10):
        await call_finished(world.runner, call_id)
    call = await world.store.get_call(None, call_id)
    assert call is not None
    assert call.end_reason == "assistant-ended-call"
    outputs = [e["item"] for e in world.sent("conversation.item.create") if "call_id" in e["item"]]
    assert outputs == [
        {"type": "function_call_output", "call_id": "fc_1", "output": "The call is ending."}
    ]
    roles = [m.role for m in await world.store.list_messages(call_id)]
    assert "tool_calls" in roles
    assert "tool" in roles


class SlowTool:
    """A tool that takes ``seconds`` to answer."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def run(self, call: ToolCall) -> ToolResult:
        await asyncio.sleep(self.seconds)
        return ToolResult("Booked.")


async def test_no_silence_prompt_while_a_tool_runs(world: World) -> None:
    world.script.turn_after_frames = 2
    world.script.function_call = ("book", {})
    config = ConversationConfig(
        endpointing=EndpointingConfig(
            silence_prompt_ms=200, silence_timeout_ms=None, max_duration_ms=None
        ),
        silence_prompt_message="Still there?",
        tools=(ToolSpec("book"),),
        tool_filler_message=None,
    )
    async with dialogue(world, config, SlowTool(0.8)) as running:
        for _ in range(2):  # the caller's short turn
            running.feed_audio(b"\x00\x10" * 160)
        await until(lambda: any(e.role == "assistant" for e in running.transcript), 5)
        assert world.tts.texts == []  # silent 0.8 s, but the tool was running
        assert [e.content for e in running.transcript if e.role == "assistant"] == ["Hi"]
