"""An assistant's MCP server on a served call (the runner, a speech-to-speech session): its
tools are listed as the call starts and offered beside the configured ones; the model's call
of one reaches the server with its arguments and its result goes back to the model, on the
call's record as a webhook tool's is. A dead server offers nothing: the call still talks."""

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
from fakes.mcp_standin import BOOKED, McpStandIn, closed_port_url

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

__all__ = ["world"]  # the fixture


def mcp_tool(url: str) -> dict[str, object]:
    return {
        "type": "mcp",
        "server": {"url": url, "headers": {"Authorization": "Bearer crm-secret-1234"}},
        "allowed_tools": ["book_appointment", "check_insurance"],
        "timeout_seconds": 5,
    }


async def test_the_servers_tool_is_offered_called_and_recorded(world: World) -> None:
    async with McpStandIn() as crm:
        world.script.turn_after_frames = 10
        world.script.function_call = ("book_appointment", {"day": "Monday"})
        llm_config = {"url": world.realtime_url, "api_key": KEY}
        tools = [{"type": "end_call"}, mcp_tool(crm.url)]
        call_id = await answered_realtime_call(world, llm_config, tools=tools)
        await until(lambda: bool(world.sent("session.update")))
        (update,) = world.sent("session.update")
        offered = [t["name"] for t in update["session"]["tools"]]
        assert offered == ["end_call", "book_appointment", "check_insurance"]
        channel = world.fake.channel()
        for frame in caller_speech(10):
            await channel.ws.send_bytes(frame)
            await asyncio.sleep(0.02)

        def outputs() -> list[dict[str, object]]:
            created = world.sent("conversation.item.create")
            return [e["item"] for e in created if "call_id" in e["item"]]

        await until(lambda: bool(outputs()), 10)
        assert crm.booked == [{"day": "Monday"}]
        assert crm.authorizations == {"Bearer crm-secret-1234"}
        assert outputs() == [
            {
                "type": "function_call_output",
                "call_id": "fc_1",
                "output": BOOKED.format(day="Monday"),
            }
        ]
        async with asyncio.timeout(5):  # stored behind the call's earlier writes
            while not any(m.role == "tool" for m in await world.store.list_messages(call_id)):
                await asyncio.sleep(0.05)
        messages = await world.store.list_messages(call_id)
        roles = [m.role for m in messages]
        assert "tool_calls" in roles
        tool = next(m for m in messages if m.role == "tool")
        assert "book_appointment" in tool.content
        assert "RX-42" in tool.content


async def test_a_dead_server_offers_nothing_and_the_call_talks(world: World) -> None:
    llm_config = {"url": world.realtime_url, "api_key": KEY}
    tools = [{"type": "end_call"}, mcp_tool(closed_port_url())]
    await answered_realtime_call(world, llm_config, tools=tools)
    await until(lambda: bool(world.sent("session.update")))
    (update,) = world.sent("session.update")
    assert [t["name"] for t in update["session"]["tools"]] == ["end_call"]
    first = ("assistant", "Hello, dental clinic.")
    await until(lambda: first in world.observer.seen)
