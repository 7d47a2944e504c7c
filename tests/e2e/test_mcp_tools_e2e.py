"""MCP tools on a real call: REST → engine → lab Asterisk → the utterance party ("I would like
to book an appointment on Monday.") → Whisper → the OpenAI-compatible stand-in, offered the
tools of the organization's MCP server (the official SDK's server on loopback, ``McpStandIn``)
→ ``tools/call`` on that server → its answer in the model's next request → what the call says.
A dead MCP server (a closed port) leaves the call talking, without its tools."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from e2e.audio_helpers import UTTERANCE_PARTY, require_offline_speech
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import control, wait_recorded
from e2e.test_tools_e2e import _wait_said
from fakes.llm_standin import ChatRequest, LlmStandIn, ToolCalls
from fakes.mcp_standin import McpStandIn, closed_port_url
from voicedock.pipeline.providers.piper_tts import PiperTts
from voicedock.pipeline.providers.whisper.stt import WhisperStt
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

GREETING = "Riverside dental clinic."
BOOKED = "You are booked for Monday at nine."
NO_TOOL = "I cannot book that right now, sorry."
CRM_KEY = "Bearer crm-lab-secret-7f3a"


def books(request: ChatRequest) -> str | ToolCalls:
    """Books through the MCP server's tool when it is offered, then speaks the booking; without
    it, says it cannot."""
    if any(m.get("role") == "tool" for m in request.messages):
        return BOOKED
    if "book_appointment" in request.tool_names:
        return ToolCalls((("book_appointment", {"day": "Monday"}),))
    return NO_TOOL


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    require_offline_speech()
    await WhisperStt().warm_up()
    await PiperTts().warm_up()
    async with LlmStandIn(reply=books) as standin:
        yield standin


@pytest.fixture
async def live(lab: LabAsterisk, tmp_path: Path, llm: LlmStandIn) -> AsyncIterator[LiveService]:
    settings = service_settings(lab, tmp_path / "mcp-tools.db", "ari")
    settings.speech.openai_base_url = llm.base_url
    settings.speech.openai_api_key = "sk-lab-operator"
    settings.egress.allow_loopback = True  # the organization's MCP server is on loopback here
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


def assistant(url: str) -> dict[str, Any]:
    return {
        "provider": "openai",
        "first_message": GREETING,
        "stt_config": {"provider": "offline"},
        "tts_config": {"provider": "offline"},
        "system_prompt": "You book appointments for the Riverside dental clinic.",
        "tools": [
            {
                "type": "mcp",
                "server": {"url": url, "headers": {"Authorization": CRM_KEY}},
                "allowed_tools": ["book_appointment"],
                "timeout_seconds": 10,
            }
        ],
    }


async def _place(live: LiveService, url: str) -> str:
    resp = await live.client.post(
        "/calls/outbound",
        json={"destination": UTTERANCE_PARTY, "assistant": assistant(url)},
        headers=live.auth(),
    )
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["call_id"])


async def test_the_model_books_through_the_mcp_server_and_the_call_speaks_its_answer(
    live: LiveService, llm: LlmStandIn
) -> None:
    async with McpStandIn() as crm:
        call_id = await _place(live, crm.url)
        first = await llm.wait_request(timeout=40)
        assert first.tool_names == ["book_appointment"]  # allowed_tools: only it
        assert first.tools is not None
        assert first.tools[0]["function"]["parameters"]["required"] == ["day"]
        second = await llm.wait_request(2, timeout=30)
        # The server got the model's arguments, with the organization's header.
        assert crm.booked == [{"day": "Monday"}]
        assert CRM_KEY in crm.authorizations
        # Its answer is what the model read next.
        results = [m["content"] for m in second.messages if m["role"] == "tool"]
        assert results == ["Booked for Monday at nine, confirmation RX-42."]
        await _wait_said(live, call_id, BOOKED)
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=20)
    roles = [m["role"] for m in ended["messages"]]
    assert "tool_calls" in roles, roles
    assert "tool" in roles, roles
    said = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    assert said[0] == GREETING
    assert BOOKED in said
    assert "crm-lab-secret" not in json.dumps(ended)


async def test_a_dead_mcp_server_leaves_the_call_talking_without_its_tools(
    live: LiveService, llm: LlmStandIn
) -> None:
    call_id = await _place(live, closed_port_url())
    first = await llm.wait_request(timeout=40)
    assert first.tool_names == []
    await _wait_said(live, call_id, NO_TOOL)
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=20)
    said = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    assert said[:2] == [GREETING, NO_TOOL]
