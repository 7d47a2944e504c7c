"""``voicedock mcp`` on a real call, as an AI assistant's host uses it: the official MCP SDK's
client starts ``voicedock mcp`` over stdio with the organization's key, places a call through
it to the lab's utterance party (real Asterisk, offline speech), reads the call until its
transcript holds what the party said, and ends it."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from e2e.audio_helpers import UTTERANCE_PARTY, warm_offline_speech, words
from e2e.conftest import LiveService
from e2e.test_audio_e2e import wait_recorded
from fakes.world import SUPPORT_ID
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

GREETING = "Hello, city library."


@pytest.fixture
async def warm_speech() -> None:
    await warm_offline_speech()


async def read(client: Client, tool: str, arguments: dict[str, Any]) -> Any:
    result = await client.call_tool(tool, arguments)
    (block,) = result.content
    assert not result.is_error, block.text
    return json.loads(block.text)


async def test_a_call_placed_through_mcp_is_read_back_with_its_transcript(
    live_ari: LiveService, lab: LabAsterisk, warm_speech: None
) -> None:
    live = live_ari
    url = str(live.client.make_url("/"))
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "voicedock.cli", "mcp", "--url", url],
        env={"VOICEDOCK_API_KEY": live.key},
    )
    async with Client(server, mode="legacy") as client:
        placed = await read(
            client,
            "place_call",
            {
                "destination": UTTERANCE_PARTY,
                "assistant_id": SUPPORT_ID,
                "assistant_override": {"first_message": GREETING},
            },
        )
        call_id = placed["call_id"]
        async with asyncio.timeout(40):
            while True:
                call = await read(client, "get_call", {"call_id": call_id})
                said = [m["content"] for m in call["transcript"] if m["role"] == "user"]
                if any({"appointment", "monday"} <= words(s) for s in said):
                    break
                await asyncio.sleep(0.5)
        assert call["status"] == "in-progress"
        assert call["transcript"][0] == {"role": "assistant", "content": GREETING}
        ended = await read(client, "control_call", {"call_id": call_id, "type": "end-call"})
        assert ended["success"] is True
        await wait_recorded(live, call_id, within=15)
        final = await read(client, "get_call", {"call_id": call_id})
    assert final["status"] == "ended"
    assert final["end_reason"] == "api-end-call"
