"""Tools on a real call: REST → engine → lab Asterisk → a speaking party → Whisper → the
OpenAI-compatible stand-in, which calls the assistant's webhook tools → the signed
``tool-calls`` requests to the organization's server (``fakes.tool_server``) → their results
in the model's next request → what the caller heard.

The lab's utterance party says "I would like to book an appointment on Monday." three seconds
after answering; the model answers it with two tool calls: ``book_appointment`` (a slow
server: the caller hears the filler) and ``check_insurance`` (the server fails: the model
reads that it failed). Its next request carries both results; it then speaks the booking.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from e2e.audio_helpers import (
    UTTERANCE_PARTY,
    read_new_recording,
    require_offline_speech,
    transcribe,
    wait_transcript,
    words,
)
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import control, wait_recorded
from e2e.test_calls_e2e import wait_status
from fakes.llm_standin import ChatRequest, LlmStandIn, ToolCalls
from fakes.tool_server import Answer, ToolServer
from fakes.world import ACME
from voicedock.config import WebhookEndpointSettings
from voicedock.domain.webhooks import generate_secret
from voicedock.pipeline.providers.piper_tts import PiperTts
from voicedock.pipeline.providers.whisper.stt import WhisperStt
from voicedock_lab.keys_heard import gaps_between, keys_heard
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

DTMF_PARTY = "+31612345680"  # says the appointment utterance, then collects DTMF
SECRET = generate_secret()
BOOKED = "You are booked for Monday at nine."
TOOLS = [
    {
        "name": "book_appointment",
        "description": "Book an appointment on the given day.",
        "parameters": {
            "type": "object",
            "properties": {"day": {"type": "string"}},
            "required": ["day"],
        },
        "timeout_seconds": 10,
    },
    {"name": "check_insurance", "description": "Check the caller's insurance plan."},
]
ANSWERS = {
    "book_appointment": Answer({"result": {"confirmation": "RX-42", "time": "09:00"}}, delay_s=2.5),
    "check_insurance": Answer({"message": "database down"}, status=500),
}


PLAN = {
    "summary_prompt": "Name the day booked.",
    "structured_data_schema": {
        "type": "object",
        "properties": {"day": {"type": "string"}, "confirmation": {"type": "string"}},
        "required": ["day", "confirmation"],
    },
    "success_evaluation_rubric": "Was an appointment booked?",
}
EXTRACTED = {"day": "Monday", "confirmation": "RX-42"}


def model(request: ChatRequest) -> str | ToolCalls:
    """Calls both tools for the caller's request; once it has their results, speaks. Asked
    to analyse the call (after it), answers the analysis plan."""
    if (request.system_prompt or "").startswith("You analyse phone calls"):
        answer = {
            "summary": "Booked Monday.",
            "sentiment": 8,
            "structured_data": EXTRACTED,
            "success_evaluation": "yes",
        }
        return json.dumps(answer)
    if any(m.get("role") == "tool" for m in request.messages):
        return BOOKED
    calls = (("book_appointment", {"day": "Monday"}), ("check_insurance", {}))
    return ToolCalls(calls, text="Let me check.")


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    require_offline_speech()
    await WhisperStt().warm_up()
    await PiperTts().warm_up()
    async with LlmStandIn(reply=model) as standin:
        yield standin


@pytest.fixture
async def server() -> AsyncIterator[ToolServer]:
    async with ToolServer(SECRET, ANSWERS) as running:
        yield running


@pytest.fixture
async def live(
    lab: LabAsterisk, tmp_path: Path, llm: LlmStandIn, server: ToolServer
) -> AsyncIterator[LiveService]:
    settings = service_settings(lab, tmp_path / "tools.db", "ari")
    settings.speech.openai_base_url = llm.base_url
    settings.speech.openai_api_key = "sk-lab-operator"
    settings.policy.internal_targets = ["sales"]
    settings.egress.allow_loopback = True  # the organization's server is on loopback here
    settings.webhooks.endpoints = [
        WebhookEndpointSettings(
            name="tools",
            organization=ACME,
            url=server.url,
            secret=SECRET,
            event_types=["tool-calls"],
        )
    ]
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


def assistant(tools: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "provider": "openai",
        "first_message": "Riverside dental clinic.",
        "stt_config": {"provider": "offline"},
        "tts_config": {"provider": "offline"},
        "system_prompt": "You book appointments for the Riverside dental clinic.",
        "tools": tools,
    }


async def test_webhook_tools_answer_the_model_and_the_caller_hears_the_filler(
    lab: LabAsterisk, live: LiveService, llm: LlmStandIn, server: ToolServer
) -> None:
    recordings = Path(lab.recordings_dir)
    before = set(recordings.glob("utterance-*-rx.wav"))
    resp = await live.client.post(
        "/calls/outbound",
        json={
            "destination": UTTERANCE_PARTY,
            "assistant": {**assistant(TOOLS), "analysis_plan": PLAN},
        },
        headers=live.auth(),
    )
    assert resp.status == 200, await resp.text()
    call_id = str((await resp.json())["call_id"])

    first = await llm.wait_request(timeout=40)
    assert first.tool_names == ["book_appointment", "check_insurance"]
    assert first.tools is not None
    assert first.tools[0]["function"]["parameters"]["required"] == ["day"]

    # The organization's server got signed requests (a bad signature would be refused) with
    # the call, the assistant's tool and the model's arguments.
    booking = await server.wait_request(1)
    insurance = await server.wait_request(2)
    assert server.refused == 0
    assert booking["type"] == "tool-calls"
    assert booking["call_id"] == call_id
    assert booking["data"]["tool_call"]["name"] == "book_appointment"
    assert booking["data"]["tool_call"]["arguments"] == {"day": "Monday"}
    assert insurance["data"]["tool_call"]["name"] == "check_insurance"

    # Both results reach the model's next request, after its own calls.
    second = await llm.wait_request(2, timeout=30)
    calls = [m for m in second.messages if m.get("tool_calls")]
    assert [c["function"]["name"] for c in calls[0]["tool_calls"]] == [
        "book_appointment",
        "check_insurance",
    ]
    results = {m["tool_call_id"]: m["content"] for m in second.messages if m["role"] == "tool"}
    ids = [c["id"] for c in calls[0]["tool_calls"]]
    assert json.loads(results[ids[0]]) == {"confirmation": "RX-42", "time": "09:00"}
    assert "HTTP 500" in results[ids[1]]

    await _wait_said(live, call_id, BOOKED)
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=20)

    # The transcript (and the call's events) show the calls and their results.
    roles = [m["role"] for m in ended["messages"]]
    assert "tool_calls" in roles, roles
    assert roles.count("tool") == 2, roles
    said = " ".join(m["content"] for m in ended["messages"] if m["role"] == "assistant")
    assert "One moment, please." in said
    assert BOOKED in said
    event_roles = [e["data"]["role"] for e in ended["events"] if e["type"] == "transcript"]
    assert "tool_calls" in event_roles
    assert "tool" in event_roles

    # The analysis plan: the model was asked for the schema's fields; they are stored.
    analysing = llm.requests[-1]
    assert analysing.system_prompt is not None
    assert '"confirmation"' in analysing.system_prompt
    assert "Was an appointment booked?" in analysing.system_prompt
    assert ended["analysis_result"]["structured_data"] == EXTRACTED
    assert ended["analysis_result"]["success_evaluation"] == "yes"
    assert ended["analysis_result"]["method"] == "llm"

    # The caller heard the filler while the slow tool ran, then the booking.
    pcm, rate = await read_new_recording(recordings, "utterance-*-rx.wav", before)
    heard = words(await transcribe(pcm, rate))
    assert "moment" in heard, heard
    assert heard & {"booked", "book"}, heard  # Whisper may hear "booked" as "book"


async def test_send_dtmf_is_heard_as_digits_then_end_call_hangs_up(
    lab: LabAsterisk, live: LiveService, llm: LlmStandIn
) -> None:
    def presses_then_leaves(request: ChatRequest) -> str | ToolCalls:
        done = [m for m in request.messages if m.get("role") == "tool"]
        if not done:
            return ToolCalls((("send_dtmf", {"digits": "47w2W1#"}),))  # a menu's pauses
        return ToolCalls((("end_call", {}),), text="Done. Goodbye.")

    llm.reply = presses_then_leaves
    recordings = Path(lab.recordings_dir)
    before = set(recordings.glob("dtmf-*-digits.txt"))
    tools = [{"type": "send_dtmf"}, {"type": "end_call"}]
    resp = await live.client.post(
        "/calls/outbound",
        json={"destination": DTMF_PARTY, "assistant": assistant(tools)},
        headers=live.auth(),
    )
    assert resp.status == 200, await resp.text()
    call_id = str((await resp.json())["call_id"])
    # The model's end_call ends the call by itself, after its last words.
    ended = await wait_recorded(live, call_id, within=60)
    assert (ended["status"], ended["end_reason"]) == ("ended", "assistant-ended-call")
    said = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    assert "Done. Goodbye." in said
    second = llm.requests[1]
    assert [m["content"] for m in second.messages if m["role"] == "tool"] == ["Pressed 47w2W1#."]
    # The party collected the digits (RFC 4733 through the PBX; # ends its Read()), with the
    # pauses the model asked for between them: ``w`` half a second, ``W`` a second (besides
    # each key's 100 ms and 100 ms between keys, ARI's defaults: 0.2, 0.7 and 1.2 s seen).
    digits = await _new_file(recordings, "dtmf-*-digits.txt", before)
    assert digits.read_text().strip() == "4721"
    heard = keys_heard(digits.with_name(digits.name.replace("-digits", "-times")))
    assert [key for key, _ in heard] == ["4", "7", "2", "1"]
    none, after_w, after_big_w = gaps_between(heard)
    assert none < 0.45, heard
    assert 0.5 <= after_w < 1.0, heard
    assert after_big_w >= 1.0, heard


async def test_transfer_call_from_a_template_moves_the_caller_to_sales(
    live: LiveService, llm: LlmStandIn
) -> None:
    llm.reply = ToolCalls((("transfer_call", {"destination": "sales"}),))
    # The tool is the organization's template, referenced by id.
    template = {"type": "transfer_call", "destinations": ["sales"], "message": "One moment."}
    stored = await live.client.post("/tool-templates", json=template, headers=live.auth())
    assert stored.status == 201, await stored.text()
    tools = [{"template_id": (await stored.json())["id"]}]
    resp = await live.client.post(
        "/calls/outbound",
        json={"destination": UTTERANCE_PARTY, "assistant": assistant(tools)},
        headers=live.auth(),
    )
    assert resp.status == 200, await resp.text()
    call_id = str((await resp.json())["call_id"])
    ended = await wait_status(live, call_id, ("ended", "failed"), within=60)
    assert (ended["status"], ended["end_reason"]) == ("ended", "transferred")
    assert ended["transferred_to"] == "sales"
    pbx: Any = live.service.pbx
    if call_id in {c.id for c in await pbx.ari.list_channels()}:
        await pbx.ari.hangup_channel(call_id)  # the caller is with sales now, not with us
    first = llm.requests[0]
    assert first.tools is not None
    assert first.tools[0]["function"]["parameters"]["properties"]["destination"]["enum"] == [
        "sales"
    ]


async def _new_file(directory: Path, pattern: str, before: set[Path]) -> Path:
    async with asyncio.timeout(20):
        while not (fresh := set(directory.glob(pattern)) - before):
            await asyncio.sleep(0.2)
    (found,) = fresh
    return found


async def _wait_said(live: LiveService, call_id: str, text: str) -> None:
    await wait_transcript(
        live,
        call_id,
        lambda m: m["role"] == "assistant" and text in m["content"],
        within=30,
    )
