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
    until,
    world,
)

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
        await world.runner.wait_finished(call_id)
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
