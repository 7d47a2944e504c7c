"""Squads on a real call: REST → engine → lab Asterisk → a speaking party → Whisper → the
OpenAI-compatible stand-in as each member's model → what the party heard.

The squad's receptionist answers (Piper's voice); the lab's utterance party says "I would like
to book an appointment on Monday."; the receptionist's model hands the call over to billing
(the built-in ``handoff`` tool). Billing (espeak-ng's voice, a prompt of its own) says its
transition first; the context the operator then injects asks billing's model to answer: its
request carries billing's instructions and the call so far.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

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
from e2e.test_audio_e2e import DEMO_PARTY, control, wait_recorded
from fakes.llm_standin import ChatRequest, LlmStandIn, ToolCalls
from voicedock.pipeline.dialogue.carried import SUMMARY_PROMPT
from voicedock.pipeline.providers.piper_tts import PiperTts
from voicedock.pipeline.providers.whisper.stt import WhisperStt
from voicedock_lab.server import LabAsterisk
from webhooks.receiver import Receiver, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

RECEPTIONIST_PROMPT = "You are the receptionist of the Riverside dental clinic."
BILLING_PROMPT = "You answer billing questions for the Riverside dental clinic."
TRANSITION = "This is the billing office. How can I help you today?"
BILLING_ANSWER = "It was paid on Monday, thank you for calling."
# Billing's words that Whisper hears in espeak-ng's voice through a call whatever comes before
# them; it hears others as it likes ("billing" as "milling", "your invoice" as "you're in my bin").
BILLING_HEARD = {"office", "how", "help", "thank", "calling"}


def _assistant(prompt: str, tts: dict[str, Any], first: str | None = None) -> dict[str, Any]:
    config = {
        "provider": "openai",
        "stt_config": {"provider": "offline"},
        "tts_config": tts,
        "system_prompt": prompt,
    }
    return config if first is None else {**config, "first_message": first}


SQUAD = {
    "name": "Front desk",
    "members": [
        {
            "name": "receptionist",
            "assistant": _assistant(RECEPTIONIST_PROMPT, {"provider": "offline"}, "Front desk."),
            "destinations": [
                {
                    "member": "billing",
                    "description": "The caller asks about an invoice or a payment.",
                    "message": TRANSITION,
                }
            ],
        },
        {
            "name": "billing",
            "assistant": _assistant(BILLING_PROMPT, {"provider": "espeak-ng", "voice": "en-us"}),
        },
    ],
}


def model(request: ChatRequest) -> str | ToolCalls:
    """The receptionist hands every caller over to billing (once: then it speaks); billing
    answers."""
    prompt = request.system_prompt or ""
    if prompt.startswith("You analyse phone calls"):  # after the call
        return '{"summary": "The caller was handed over to billing."}'
    if prompt.startswith(BILLING_PROMPT):
        return BILLING_ANSWER
    if any(m.get("role") == "tool" for m in request.messages):
        return "Sorry, I could not hand you over."
    return ToolCalls((("handoff", {"destination": "billing", "reason": "an invoice"}),))


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    require_offline_speech()
    await WhisperStt().warm_up()
    await PiperTts().warm_up()
    async with LlmStandIn(reply=model) as standin:
        yield standin


@pytest.fixture
async def live(lab: LabAsterisk, tmp_path: Path, llm: LlmStandIn) -> AsyncIterator[LiveService]:
    settings = service_settings(lab, tmp_path / "squads.db", "ari")
    settings.speech.openai_base_url = llm.base_url
    settings.speech.openai_api_key = "sk-lab-operator"
    settings.egress.allow_loopback = True  # as in the lab: the webhook receivers' loopback
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


async def _squad_call(live: LiveService, destination: str, squad: dict[str, Any] = SQUAD) -> str:
    """A new squad, and a call to ``destination`` placed with it: the call's id."""
    resp = await live.client.post("/squads", json=squad, headers=live.auth())
    assert resp.status == 201, await resp.text()
    squad_id = str((await resp.json())["id"])
    resp = await live.client.post(
        "/calls/outbound",
        json={"destination": destination, "squad_id": squad_id},
        headers=live.auth(),
    )
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["call_id"])


async def _billing_asked(
    live: LiveService, llm: LlmStandIn, call_id: str, request: int = 2
) -> ChatRequest:
    """Once billing said its transition, the operator's context asks it about an invoice:
    the request billing's model then receives (the stand-in's ``request``-th)."""
    await wait_transcript(
        live, call_id, lambda m: m["role"] == "assistant" and TRANSITION in m["content"], 30
    )
    await control(
        live,
        call_id,
        {"type": "inject-context", "content": "The caller asks about invoice 42.",
         "trigger_response": True},
    )  # fmt: skip
    billing = await llm.wait_request(request, timeout=30)
    assert (billing.system_prompt or "").startswith(BILLING_PROMPT)
    return billing


async def _ended_after_billing_answered(live: LiveService, call_id: str) -> dict[str, Any]:
    """Once billing's answer is in the transcript, the call ended: its record."""
    await wait_transcript(
        live, call_id, lambda m: m["role"] == "assistant" and BILLING_ANSWER in m["content"], 30
    )
    await control(live, call_id, {"type": "end-call"})
    return await wait_recorded(live, call_id, within=30)


async def handoff_call(live: LiveService, llm: LlmStandIn, destination: str) -> str:
    """Call the party with the squad; the receptionist's model hands the call over to
    billing. Check what each model received and what the call recorded; its id."""
    call_id = await _squad_call(live, destination)

    # The receptionist's model is offered the handoff to billing, described as the squad says.
    first = await llm.wait_request(timeout=40)
    assert (first.system_prompt or "").startswith(RECEPTIONIST_PROMPT)
    assert "handoff" in first.tool_names
    handoff = next(t for t in first.tools or [] if t["function"]["name"] == "handoff")
    assert handoff["function"]["parameters"]["properties"]["destination"]["enum"] == ["billing"]
    assert "invoice or a payment" in handoff["function"]["description"]

    # Billing says its transition first, then answers what it is asked.
    billing = await _billing_asked(live, llm, call_id)
    assert RECEPTIONIST_PROMPT not in (billing.system_prompt or "")
    # The call so far: the receptionist's words, the caller's, billing's transition.
    said = [m.get("content") or "" for m in billing.messages]
    assert any("Front desk." in s for s in said), said
    assert any("appointment" in s.lower() for s in said), said
    assert any(TRANSITION in s for s in said), said
    assert billing.tool_names == []  # billing may hand the call over to no one
    ended = await _ended_after_billing_answered(live, call_id)

    squads = await (await live.client.get("/squads", headers=live.auth())).json()
    assert ended["squad_id"] == squads["squads"][0]["id"]  # the call names its squad
    assert [m["member"] for m in ended["members"]] == ["receptionist", "billing"]
    # One handoff event, from the receptionist to billing, with the model's reason.
    handoffs = [e["data"] for e in ended["events"] if e["type"] == "handoff"]
    assert handoffs == [{"from": "receptionist", "to": "billing", "reason": "an invoice"}]
    spoken = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    assert spoken.index("Front desk.") < spoken.index(TRANSITION) < spoken.index(BILLING_ANSWER)
    # Each message names the member whose turn it was: the receptionist's until the handoff.
    turns = [(m["role"], m.get("member")) for m in ended["messages"]]
    assert ("assistant", "receptionist") in turns
    assert ("user", "receptionist") in turns  # the caller's words, heard by the receptionist
    named = [member for _, member in turns]
    assert None not in named, turns
    switched = named.index("billing")
    assert set(named[:switched]) == {"receptionist"}
    assert set(named[switched:]) == {"billing"}, turns
    assert ended["messages"][switched]["content"] == TRANSITION
    assert any(
        e["data"].get("member") == "billing" for e in ended["events"] if e["type"] == "transcript"
    )
    # Billing spoke in its own voice: espeak-ng's characters are billing's words.
    # The call's seconds are split between the two, the receptionist's up to the handoff.
    members = ended["usage"]["members"]
    assert [(m["member"], m["assistant_id"]) for m in members] == [
        ("receptionist", None),
        ("billing", None),
    ]
    assert all(m["seconds"] > 1 for m in members), members
    total = sum(m["seconds"] for m in members)
    assert abs(total - ended["usage"]["connected_seconds"]) < 0.01, members
    tts = {u["provider"]: u["characters"] for u in ended["usage"]["tts"]}
    assert tts == {"offline": len("Front desk."), "espeak-ng": len(TRANSITION + BILLING_ANSWER)}
    return call_id


async def test_the_receptionist_hands_the_call_over_to_billing(
    lab: LabAsterisk, live: LiveService, llm: LlmStandIn
) -> None:
    recordings = Path(lab.recordings_dir)
    before = set(recordings.glob("utterance-*-rx.wav"))
    await handoff_call(live, llm, UTTERANCE_PARTY)

    # The party heard the receptionist, then billing's transition and its answer.
    pcm, rate = await read_new_recording(recordings, "utterance-*-rx.wav", before)
    assert_receptionist_then_billing_heard(await transcribe(pcm, rate))


def assert_receptionist_then_billing_heard(transcript: str) -> None:
    """The party heard the receptionist's greeting (Piper's voice) and billing's transition and
    answer (espeak-ng's)."""
    assert words(transcript) & {"front", "desk"}, transcript
    assert_heard(BILLING_HEARD, transcript)


async def test_an_operator_hands_the_call_over_to_billing(
    lab: LabAsterisk, live: LiveService, llm: LlmStandIn
) -> None:
    def receptionist_answers(request: ChatRequest) -> str | ToolCalls:
        if (request.system_prompt or "").startswith(RECEPTIONIST_PROMPT):
            return "We are open from nine to five."
        return model(request)

    llm.reply = receptionist_answers
    call_id = await _squad_call(live, UTTERANCE_PARTY)
    await wait_transcript(
        live, call_id, lambda m: m["role"] == "assistant" and "nine to five" in m["content"], 40
    )

    # A member the squad does not have is refused; billing (by name) is handed the call.
    refused = await live.client.post(
        f"/calls/{call_id}/control",
        json={"type": "handoff", "member": "sales"},
        headers=live.auth(),
    )
    assert refused.status == 422, await refused.text()
    await control(live, call_id, {"type": "handoff", "member": "billing"})
    billing = await _billing_asked(live, llm, call_id)
    said = [m.get("content") or "" for m in billing.messages]
    assert any("nine to five" in s for s in said), said
    ended = await _ended_after_billing_answered(live, call_id)
    handoffs = [e["data"] for e in ended["events"] if e["type"] == "handoff"]
    assert handoffs == [{"from": "receptionist", "to": "billing", "reason": "operator"}]


async def test_billing_is_given_a_summary_of_the_call_instead_of_its_turns(
    lab: LabAsterisk, live: LiveService, llm: LlmStandIn
) -> None:
    summary = "The caller has a question for billing."

    def summarising(request: ChatRequest) -> str | ToolCalls:
        if (request.system_prompt or "").startswith(SUMMARY_PROMPT):
            return summary
        return model(request)

    llm.reply = summarising
    billing_member = {**SQUAD["members"][1], "carry_over": "summary"}
    squad = {**SQUAD, "members": [SQUAD["members"][0], billing_member]}
    call_id = await _squad_call(live, UTTERANCE_PARTY, squad)
    await llm.wait_request(timeout=40)  # the receptionist's model hands the call over

    # One request summarises the call so far: the receptionist's words and the caller's.
    asked = await llm.wait_request(2, timeout=30)
    assert asked.system_prompt == SUMMARY_PROMPT
    [call_so_far] = asked.texts("user")
    assert "Front desk." in call_so_far, call_so_far
    assert "appointment" in call_so_far.lower(), call_so_far

    # Billing's model reads the summary, not the turns.
    billing = await _billing_asked(live, llm, call_id, request=3)
    said = [m.get("content") or "" for m in billing.messages]
    assert any(summary in s for s in said), said
    assert not any("Front desk." in s for s in said), said
    assert not any("appointment" in s.lower() for s in said), said
    ended = await _ended_after_billing_answered(live, call_id)
    handoffs = [e["data"] for e in ended["events"] if e["type"] == "handoff"]
    assert handoffs == [{"from": "receptionist", "to": "billing", "reason": "an invoice"}]


def _billing_limited(**limits: int) -> dict[str, Any]:
    """The squad with billing's own limits (the receptionist keeps the operator's)."""
    billing = {**SQUAD["members"][1]}
    billing["assistant"] = {**billing["assistant"], **limits}
    return {**SQUAD, "members": [SQUAD["members"][0], billing]}


def _seconds(ended: dict[str, Any], at: str) -> float:
    """``at`` (an ISO moment) in seconds after the call was answered."""
    started = datetime.fromisoformat(ended["started_at"])
    return (datetime.fromisoformat(at) - started).total_seconds()


async def test_billings_max_duration_counts_from_the_calls_answer(
    lab: LabAsterisk, live: LiveService, llm: LlmStandIn
) -> None:
    squad = _billing_limited(max_duration_seconds=30, silence_timeout_seconds=600)
    call_id = await _squad_call(live, DEMO_PARTY, squad)  # on the line for some 35 s
    ended = await wait_recorded(live, call_id, within=60)
    assert ended["end_reason"] == "max-duration", ended["end_reason"]
    [handoff] = [e for e in ended["events"] if e["type"] == "handoff"]
    handed_over = _seconds(ended, handoff["created_at"])
    assert handed_over > 3, handed_over  # billing's own 30 s would end the call later
    assert 29 < _seconds(ended, ended["ended_at"]) < 32.5, ended["ended_at"]


async def test_billings_silence_timeout_holds_once_it_has_the_call(
    lab: LabAsterisk, live: LiveService, llm: LlmStandIn
) -> None:
    call_id = await _squad_call(live, UTTERANCE_PARTY, _billing_limited(silence_timeout_seconds=5))
    ended = await wait_recorded(live, call_id, within=60)
    assert ended["end_reason"] == "silence-timeout", ended["end_reason"]
    said = [e["data"] for e in ended["events"] if e["type"] == "transcript"]
    transition = next(d for d in said if d["content"] == TRANSITION)
    silent = _seconds(ended, ended["ended_at"]) - _seconds(ended, transition["ended_at"])
    assert 4.5 < silent < 12, silent  # billing's 5 s, not the receptionist's 30 s


async def _saved(live: LiveService, name: str, config: dict[str, Any]) -> str:
    resp = await live.client.post("/assistants", json={"name": name, **config}, headers=live.auth())
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def _endpoint(live: LiveService, receiver: Receiver, assistant_id: str) -> None:
    """``receiver`` gets the ``tool-calls`` requests of ``assistant_id``'s tools."""
    await receiver.start()
    body = {"url": receiver.url, "assistant_id": assistant_id, "event_types": ["tool-calls"]}
    resp = await live.client.post("/webhooks", json=body, headers=live.auth())
    assert resp.status == 201, await resp.text()
    receiver.secret = (await resp.json())["secret"]


async def test_billings_tool_calls_go_to_billings_endpoint(
    lab: LabAsterisk, live: LiveService, llm: LlmStandIn
) -> None:
    tool = {
        "type": "webhook",
        "name": "invoice_status",
        "description": "The status of an invoice.",
        "parameters": {"type": "object", "properties": {"invoice": {"type": "string"}}},
    }
    receptionist = SQUAD["members"][0]
    billing = {**SQUAD["members"][1]["assistant"], "tools": [tool]}
    receptionist_id = await _saved(live, "Reception", receptionist["assistant"])
    billing_id = await _saved(live, "Billing", billing)
    paid = web.json_response({"result": "paid in full"})
    billings, receptions = Receiver("", script=[paid]), Receiver("")
    try:
        await _endpoint(live, billings, billing_id)
        await _endpoint(live, receptions, receptionist_id)

        def billing_asks_the_server(request: ChatRequest) -> str | ToolCalls:
            prompt = request.system_prompt or ""
            if prompt.startswith(BILLING_PROMPT) and not request.texts("tool"):
                return ToolCalls((("invoice_status", {"invoice": "42"}),))
            return model(request)

        llm.reply = billing_asks_the_server
        members = [
            {
                "name": "receptionist",
                "assistant_id": receptionist_id,
                "destinations": receptionist["destinations"],
            },
            {"name": "billing", "assistant_id": billing_id},
        ]
        call_id = await _squad_call(live, UTTERANCE_PARTY, {"name": "Desk", "members": members})
        await _billing_asked(live, llm, call_id)
        await wait_until(lambda: billings.requests, timeout=20)
        [asked] = billings.requests
        sent = json.loads(asked.body)
        assert sent["type"] == "tool-calls"
        assert sent["data"]["assistant_id"] == billing_id  # the member's, not the call's
        assert sent["data"]["tool_call"]["name"] == "invoice_status"
        await _ended_after_billing_answered(live, call_id)
        assert receptions.requests == []
    finally:
        await billings.stop()
        await receptions.stop()
