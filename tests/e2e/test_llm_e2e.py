"""What the LLM receives on a real call: REST → engine → lab Asterisk → a speaking party →
Whisper → the OpenAI-compatible LLM stand-in (``fakes.llm_standin``) set as the operator's
``[speech] openai_base_url``.

The lab's utterance party says "I would like to book an appointment on Monday." three seconds
after answering; the assistant's own instructions (``llm_config.messages``) and the caller's
words must both reach the LLM.
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
    assert_heard,
    read_new_recording,
    require_offline_speech,
    transcribe,
    wait_transcript,
    words,
)
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import control, wait_recorded
from fakes.llm_standin import ChatRequest, LlmStandIn, ToolCalls
from fakes.world import SUPPORT_ID
from voicedock.pipeline.providers.piper_tts import PiperTts
from voicedock.pipeline.providers.whisper.stt import WhisperStt
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

OPERATOR_KEY = "sk-lab-operator"
INSTRUCTIONS = "You are Ada, the booking assistant of the Riverside dental clinic."
REPLY = "Monday at nine is free."


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    require_offline_speech()
    await WhisperStt().warm_up()
    await PiperTts().warm_up()
    async with LlmStandIn(reply=REPLY) as standin:
        yield standin


@pytest.fixture
async def live(lab: LabAsterisk, tmp_path: Path, llm: LlmStandIn) -> AsyncIterator[LiveService]:
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    settings.speech.openai_base_url = llm.base_url
    settings.speech.openai_api_key = OPERATOR_KEY
    settings.speech.llm = "openai"  # the operator's LLM for assistants of provider offline
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


async def converse(live: LiveService, llm: LlmStandIn, body: dict[str, Any]) -> ChatRequest:
    """Place the call to the utterance party; the LLM request that carries its words."""
    return (await converse_call(live, llm, body))[0]


async def converse_call(
    live: LiveService, llm: LlmStandIn, body: dict[str, Any]
) -> tuple[ChatRequest, dict[str, Any]]:
    """Place the call to the utterance party: the LLM request that carries its words (the
    first of this call), and the call as ``GET /calls/{id}`` shows it once ended."""
    seen = len(llm.requests)
    resp = await live.client.post(
        "/calls/outbound", json={"destination": UTTERANCE_PARTY, **body}, headers=live.auth()
    )
    assert resp.status == 200, await resp.text()
    call_id = str((await resp.json())["call_id"])
    request = await llm.wait_request(seen + 1, timeout=30)
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=15)
    assert ended["status"] == "ended"
    assert REPLY in [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    return request, ended


async def test_transient_assistant_of_provider_openai_with_its_instructions(
    live: LiveService, llm: LlmStandIn
) -> None:
    assistant = {
        "provider": "openai",  # chooses the LLM; llm_config has no provider
        "first_message": "Riverside dental clinic.",
        "stt_config": {"provider": "offline"},
        "tts_config": {"provider": "offline"},
        "llm_config": {"messages": [{"role": "system", "content": INSTRUCTIONS}]},
    }
    request = await converse(live, llm, {"assistant": assistant})
    assert request.system_prompt == INSTRUCTIONS
    assert request.model == "gpt-4o-mini"
    assert request.authorization == f"Bearer {OPERATOR_KEY}"
    assert request.texts("assistant") == ["Riverside dental clinic."]
    assert {"appointment", "monday"} <= words(request.last_user_text), request.last_user_text


async def saved_ada(live: LiveService, **settings: Any) -> str:
    """A saved assistant of provider openai (the stand-in) with ``settings``: its id."""
    body = {
        "name": "Ada",
        "provider": "openai",
        "first_message": "Riverside dental clinic.",
        "stt_config": {"provider": "offline"},
        "tts_config": {"provider": "offline"},
        **settings,
    }
    resp = await live.client.post("/assistants", json=body, headers=live.auth())
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def test_each_call_runs_its_assistant_s_version_and_a_rollback_brings_one_back(
    live: LiveService, llm: LlmStandIn
) -> None:
    """An assistant saved, then edited twice through REST: a call on each version sends that
    version's instructions to the LLM and records the version; a rollback to the first makes
    the next call send the first's instructions again, as version 4."""
    prompts = [f"{INSTRUCTIONS} Version {n}." for n in ("one", "two", "three")]
    assistant_id = await saved_ada(live, system_prompt=prompts[0])
    for number, prompt in enumerate(prompts, start=1):
        if number > 1:
            resp = await live.client.patch(
                f"/assistants/{assistant_id}", json={"system_prompt": prompt}, headers=live.auth()
            )
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["version"] == number
        request, ended = await converse_call(live, llm, {"assistant_id": assistant_id})
        assert request.system_prompt is not None
        assert prompt in request.system_prompt
        assert ended["assistant_version"] == number

    resp = await live.client.post(
        f"/assistants/{assistant_id}/rollback", json={"version": 1}, headers=live.auth()
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["version"] == 4
    request, ended = await converse_call(live, llm, {"assistant_id": assistant_id})
    assert request.system_prompt is not None
    assert prompts[0] in request.system_prompt
    assert prompts[2] not in request.system_prompt
    assert ended["assistant_version"] == 4


async def test_a_caller_s_next_call_is_told_what_the_last_left_until_it_is_erased(
    live: LiveService, llm: LlmStandIn
) -> None:
    """An assistant with ``memory``: the first call to the party ends, its analysis (the
    stand-in's summary) is left under the party's number; the party's second call starts with
    it in the instructions the LLM receives; after ``DELETE /callers/{number}/memory`` a third
    call is told nothing."""
    summary = "Jan wants an appointment on Monday and prefers mornings."

    def answer(request: ChatRequest) -> str:
        if (request.system_prompt or "").startswith("You analyse phone calls"):
            return json.dumps({"summary": summary, "sentiment": 7})
        return REPLY

    llm.reply = answer
    body = {
        "assistant_id": await saved_ada(
            live, system_prompt=INSTRUCTIONS, memory={"recent_calls": 2}
        )
    }
    memory = f"/callers/{UTTERANCE_PARTY}/memory"

    first, _ = await converse_call(live, llm, body)
    assert first.system_prompt == INSTRUCTIONS
    async with asyncio.timeout(15):  # the call's end left what its analysis said
        while not (await (await live.client.get(memory, headers=live.auth())).json())["memories"]:
            await asyncio.sleep(0.1)
    second, _ = await converse_call(live, llm, body)
    assert second.system_prompt is not None
    assert second.system_prompt.startswith(INSTRUCTIONS)
    assert summary in second.system_prompt

    resp = await live.client.delete(memory, headers=live.auth())
    assert resp.status == 204, await resp.text()
    third, _ = await converse_call(live, llm, body)
    assert third.system_prompt == INSTRUCTIONS


DOB = "1980-04-02"
FLOW_PROMPTS = {
    "greet": "Greet the caller and say you must confirm their identity.",
    "ask_dob": "Ask for the caller's date of birth.",
    "adult": "Help the caller book their appointment.",
}
THREE_NODES = {
    "start": "greet",
    "nodes": [
        {"name": "greet", "prompt": FLOW_PROMPTS["greet"], "next": "ask_dob"},
        {
            "name": "ask_dob",
            "prompt": FLOW_PROMPTS["ask_dob"],
            "extract": [{"name": "date_of_birth", "type": "date", "description": "Their DOB"}],
            "branches": [
                {"field": "date_of_birth", "before": "2008-01-01", "next": "adult"},
                {"next": "minor"},
            ],
        },
        {"name": "adult", "prompt": FLOW_PROMPTS["adult"]},
        {"name": "minor", "say": "Sorry, we can only help adults. Goodbye.", "end": True},
    ],
}


def _step_of(request: ChatRequest) -> str:
    """The flow's node a request was made in: the one whose instructions it carries."""
    prompt = request.system_prompt or ""
    (step,) = [name for name, text in FLOW_PROMPTS.items() if text in prompt]
    return step


def flow_model(request: ChatRequest) -> str | ToolCalls:
    """The model in each node: greeted, it moves on; asked the date of birth, it hands the
    one the caller gave to next_step; in the adult node it answers."""
    step = _step_of(request)
    if step == "greet":
        return ToolCalls((("next_step", {}),))
    if step == "ask_dob":
        return ToolCalls((("next_step", {"date_of_birth": DOB}),))
    return REPLY


async def test_a_flow_drives_the_model_node_by_node_and_the_record_shows_it(
    live: LiveService, llm: LlmStandIn
) -> None:
    """A saved assistant with a three-node flow (greet, ask the date of birth extracted as a
    date, a branch on it): the caller's turn reaches the model in the greet node with a
    next_step of no fields, then in ask_dob with next_step asking the typed date, then (the
    branch: an adult) in the adult node without next_step, which answers; GET /calls/{id}
    shows the path, the field and each message's node."""
    llm.reply = flow_model
    seen = len(llm.requests)
    body = {"assistant_id": await saved_ada(live, system_prompt=INSTRUCTIONS, flow=THREE_NODES)}
    _, ended = await converse_call(live, llm, body)
    requests = [r for r in llm.requests[seen:] if r.system_prompt is not None]
    assert [_step_of(r) for r in requests[:3]] == ["greet", "ask_dob", "adult"]
    greet, ask_dob, adult = requests[:3]
    assert all((r.system_prompt or "").startswith(INSTRUCTIONS) for r in requests[:3])
    assert {"appointment", "monday"} <= words(greet.last_user_text), greet.messages
    offered = {r.tool_names.count("next_step") for r in (greet, ask_dob)}
    assert offered == {1}
    (dob_tool,) = [t for t in ask_dob.tools or [] if t["function"]["name"] == "next_step"]
    parameters = dob_tool["function"]["parameters"]
    assert parameters["required"] == ["date_of_birth"]
    assert parameters["properties"]["date_of_birth"]["format"] == "date"
    assert "next_step" not in adult.tool_names
    assert ended["flow"] == {
        "node": "adult",
        "path": ["greet", "ask_dob", "adult"],
        "fields": {"date_of_birth": DOB},
    }
    nodes = {(m["role"], m.get("flow_node")) for m in ended["messages"]}
    assert ("user", "greet") in nodes
    assert ("assistant", "adult") in nodes


async def test_hybrid_override_of_llm_config_messages(live: LiveService, llm: LlmStandIn) -> None:
    override = {
        "first_message": "Hello Jan.",
        "llm_config": {"messages": [{"role": "system", "content": INSTRUCTIONS}]},
    }
    body = {"assistant_id": SUPPORT_ID, "assistant_override": override}
    request = await converse(live, llm, body)
    assert request.system_prompt == INSTRUCTIONS
    assert {"appointment", "monday"} <= words(request.last_user_text), request.last_user_text


async def test_a_stalled_llm_is_covered_and_the_caller_hears_it(
    live: LiveService, llm: LlmStandIn, lab: LabAsterisk
) -> None:
    """Dead air on the assistant's side: the LLM answers 3 s late; after dead_air_seconds the
    caller hears the cover line, then the reply."""
    llm.delay_s = 3.0
    before = set(lab.recordings_dir.glob("utterance-*-rx.wav"))
    body = {
        "destination": UTTERANCE_PARTY,
        "assistant": {"first_message": "Hello, city library.", "dead_air_seconds": 1},
    }
    resp = await live.client.post("/calls/outbound", json=body, headers=live.auth())
    assert resp.status == 200, await resp.text()
    call_id = str((await resp.json())["call_id"])
    await wait_transcript(live, call_id, lambda m: m["content"] == REPLY, within=30)
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=15)
    spoken = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    assert spoken == ["Hello, city library.", "One moment, please.", REPLY]

    pcm, rate = await read_new_recording(lab.recordings_dir, "utterance-*-rx.wav", before)
    heard = (await transcribe(pcm, rate)).lower()
    assert heard.index("moment") < heard.index("free"), heard


async def test_a_slow_llm_is_covered_by_the_filler_the_model_never_sees(
    live: LiveService, llm: LlmStandIn, lab: LabAsterisk
) -> None:
    """The LLM filler: the model's first sentence comes 2.5 s late; after llm_filler's delay
    the caller hears the filler, then the reply. The transcript has it as a message of its
    own; the model's next request (injected context asking for a response) does not."""
    filler = "Let me check the calendar."
    llm.delay_s = 2.5
    before = set(lab.recordings_dir.glob("utterance-*-rx.wav"))
    assistant = {
        "first_message": "Hello, city library.",
        "llm_filler": {"delay_seconds": 1, "messages": [filler]},
    }
    body = {"destination": UTTERANCE_PARTY, "assistant": assistant}
    resp = await live.client.post("/calls/outbound", json=body, headers=live.auth())
    assert resp.status == 200, await resp.text()
    call_id = str((await resp.json())["call_id"])
    await wait_transcript(live, call_id, lambda m: m["content"] == REPLY, within=30)
    llm.delay_s = 0.0
    injected = {
        "type": "inject-context",
        "content": "The caller is a member.",
        "trigger_response": True,
    }
    await control(live, call_id, injected)
    second = await llm.wait_request(2, timeout=15)
    assert second.texts("assistant") == ["Hello, city library.", REPLY]
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=15)
    spoken = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    assert spoken[:3] == ["Hello, city library.", filler, REPLY]
    turn = ended["latency"][0]
    assert turn["filler_ms"] is not None
    assert 1000 <= turn["filler_ms"] < turn["first_frame_sent_ms"]

    pcm, rate = await read_new_recording(lab.recordings_dir, "utterance-*-rx.wav", before)
    heard = (await transcribe(pcm, rate)).lower()
    assert_heard({"check", "calendar", "monday", "free"}, heard)
    assert heard.index("calendar") < heard.index("free"), heard
