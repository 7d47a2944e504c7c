"""The user paths the documents describe in prose but give no request example for: transient
and hybrid modes, every provider rule of ``POST /calls/outbound``, what the LLM receives, and an
inbound call, on each PBX. (When the documents grow an example of one of these, the example
runs in ``test_doc_examples.py`` as well.)
"""

from __future__ import annotations

from typing import Any

import pytest

from api.contract import is_valid
from e2e.audio_helpers import TALK_OVER_PARTY, speech_seconds, transcript, words
from fakes.llm_standin import LlmStandIn
from pbx.lab_calls import BUSY, CONGESTION, NO_ANSWER, REJECTED, UNKNOWN
from user_paths.backends import GREETING, UserPathBackend
from user_paths.fixtures import BACKEND_MARKS, backend
from user_paths.scenarios import (
    TERMINAL,
    get_call,
    hang_up,
    until,
    wait_status,
    wait_transcript,
)

__all__ = ["backend"]

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]

OFFLINE_SPEECH = {"stt_config": {"provider": "offline"}, "tts_config": {"provider": "offline"}}
INSTRUCTIONS = "You are the front desk of the city library. Answer in one short sentence."


# One service per PBX: Asterisk 22 (chan_websocket), FreeSWITCH, and the fake off CI. Asterisk 22
# over RTP and Asterisk 16.28 run what is particular to their transport or version (a call
# that talks, barge-in, transfers, an inbound call, keys) in test_field_pbx.py; the modes and
# what the LLM receives are the service's, the same on each.
EACH_PBX = ("asterisk", "freeswitch", "freeswitch-fake")
# Where the lab's speaking parties are (the fake's say nothing): each PBX and each Asterisk
# version. A far side's refusal is told apart by each (16 reports a ring-out its own way,
# pbx/asterisk/call_events.py; the media transport plays no part before an answer, so 22 over
# RTP would repeat 22's); barge-in, on each (the 300 ms cut on each transport is
# test_field_pbx.py's).
EACH_VERSION = ("asterisk", "asterisk16", "freeswitch")
# Rules the service applies to the request before any PBX is asked: once, on Asterisk 22 (and
# the fake off CI).
NO_PBX = ("asterisk", "freeswitch-fake")


def per_backend(*xfail: str, reason: str = "", only: tuple[str, ...] | None = None) -> Any:
    """Parametrize ``backend`` (all, or ``only`` these); the ``xfail`` backends are strict
    xfails with ``reason``."""
    cases = []
    for name, marks in BACKEND_MARKS.items():
        if only is not None and name not in only:
            continue
        extra = [pytest.mark.xfail(strict=True, reason=reason)] if name in xfail else []
        cases.append(pytest.param(name, marks=marks + extra, id=name))
    return pytest.mark.parametrize("backend", cases, indirect=True)


async def outbound(backend: UserPathBackend, body: dict[str, Any]) -> tuple[int, Any]:
    resp = await backend.client.post("/calls/outbound", json=body, headers=backend.auth())
    return resp.status, await resp.json()


async def total_calls(backend: UserPathBackend) -> int:
    resp = await backend.client.get("/calls?limit=1", headers=backend.auth())
    return int((await resp.json())["pagination"]["total"])


REFUSED = {
    "xai_realtime-with-stt_config": {
        "assistant": {"provider": "xai_realtime", "stt_config": {"provider": "offline"}}
    },
    "xai_realtime-with-tts_config": {
        "assistant": {"provider": "xai_realtime", "tts_config": {"provider": "offline"}}
    },
    "openai-without-tts_config": {
        "assistant": {"provider": "openai", "stt_config": {"provider": "offline"}}
    },
    "mistral-without-stt_config": {
        "assistant": {"provider": "mistral", "tts_config": {"provider": "offline"}}
    },
    "hybrid-openai-override-without-speech": {"assistant_override": {"provider": "openai"}},
    "llm_config.messages-unknown-role": {
        "assistant": {"llm_config": {"messages": [{"role": "robot", "content": "Hi"}]}}
    },
}


# Refused by the schema's rules as well; the hybrid override is not (only the server sees the
# saved assistant it completes).
SCHEMA_VALID = frozenset({"hybrid-openai-override-without-speech"})


@per_backend(only=NO_PBX)
@pytest.mark.parametrize("rule", list(REFUSED))
async def test_provider_rules_refuse_and_nothing_is_dialled(
    backend: UserPathBackend, rule: str
) -> None:
    before = await total_calls(backend)
    body = {"destination": backend.silent, **REFUSED[rule]}
    if "assistant_override" in body:
        body["assistant_id"] = backend.assistant_id
    status, answer = await outbound(backend, body)
    # The seed's "400": a field or a provider rule the request breaks (it was 422 for a rule
    # valid field by field); the provider rules are in the schema too.
    assert status == 400, answer
    assert set(answer) == {"error", "message"}
    assert is_valid(body, "OutboundCallRequest") is (rule in SCHEMA_VALID)
    assert await total_calls(backend) == before


@per_backend(only=EACH_PBX)
async def test_hybrid_mode_overrides_the_first_message(backend: UserPathBackend) -> None:
    greeting = "Good morning, your library books are due."
    body = {
        "destination": backend.silent,
        "assistant_id": backend.assistant_id,
        "assistant_override": {"first_message": greeting},
    }
    status, answer = await outbound(backend, body)
    assert status == 200, answer
    call_id = answer["call_id"]
    await wait_transcript(backend, call_id, lambda m: m["content"] == greeting)
    record = await hang_up(backend, call_id)
    assert record["messages"][0] == {"role": "assistant", "content": greeting}
    assert record["agent_id"] == backend.assistant_id


# The lab parties that refuse a call (the same numbers on both lab PBXs) → the documented
# ``error`` of the failed call (docs/api.md).
REFUSING = {BUSY: "busy", CONGESTION: "congestion", REJECTED: "rejected", UNKNOWN: "invalid-number"}


@per_backend(only=EACH_VERSION)
async def test_a_call_the_far_side_refuses_or_never_answers_fails_with_the_documented_error(
    backend: UserPathBackend,
) -> None:
    # One after the other: each of our numbers takes one call at a time (the world's
    # max_concurrent_calls), and a failing call holds its number until the PBX says why.
    outcomes = {**REFUSING, NO_ANSWER: "no-answer"}  # rings 5 s (ring_timeout_seconds)
    for destination, error in outcomes.items():
        body = {
            "destination": destination,
            "assistant_id": backend.assistant_id,
            "ring_timeout_seconds": 5,
        }
        status, answer = await outbound(backend, body)
        assert status == 200, answer
        failed = await wait_status(backend, answer["call_id"], TERMINAL, within=15)
        assert (failed["status"], failed["error"]) == ("failed", error), failed


LONG_GREETING = (
    "Hello and welcome to the city library. Our opening hours are from nine in the morning "
    "until six in the evening, from Monday to Saturday, and on Sunday we are closed."
)


def said_invoice(message: dict[str, Any]) -> bool:
    return message["role"] == "user" and "invoice" in words(message["content"])


@pytest.mark.timeout(90)
@per_backend(only=EACH_VERSION)
async def test_a_party_who_talks_over_the_greeting_interrupts_it_and_is_heard(
    backend: UserPathBackend,
) -> None:
    """Barge-in on the PBX's real audio path: the lab's talk-over party starts a long sentence
    1.5 s after it hears the greeting. The greeting stops where the party cut in (and is stored
    as far as it was spoken); what the party said is the caller's turn in the transcript."""
    body = {
        "destination": TALK_OVER_PARTY,
        "assistant_id": backend.assistant_id,
        "assistant_override": {"first_message": LONG_GREETING},
    }
    status, answer = await outbound(backend, body)
    assert status == 200, answer
    call_id = answer["call_id"]
    cut = await wait_transcript(backend, call_id, lambda m: m["role"] == "assistant")
    assert cut["interrupted"] is True, cut
    assert 0 < len(cut["content"]) < len(LONG_GREETING), cut
    assert LONG_GREETING.startswith(cut["content"].rstrip(".…")), cut

    async def heard_or_gone() -> bool:
        call = await get_call(backend, call_id)
        return call["status"] in TERMINAL or any(said_invoice(t) for t in transcript(call))

    # The party hangs up ~26 s after answering; on a loaded machine its ~10 s sentence may
    # still be being transcribed then, and is stored with the call's record all the same.
    await until(heard_or_gone, within=35)
    record = await hang_up(backend, call_id)
    assert record["messages"][0] == {"role": "assistant", "content": cut["content"]}
    assert any(said_invoice(m) for m in record["messages"]), record["messages"]


@per_backend(only=EACH_PBX)
async def test_transient_openai_assistant_sends_its_instructions_to_the_llm(
    backend: UserPathBackend,
) -> None:
    """Transient mode, provider rule satisfied (openai with stt and tts): the LLM stand-in is
    asked, with the assistant's ``llm_config.messages``, and what it answers is spoken."""
    async with LlmStandIn(reply="We open at nine.") as llm:
        body = {
            "destination": backend.silent,
            "assistant": {
                "provider": "openai",
                "first_message": GREETING,
                **OFFLINE_SPEECH,
                "llm_config": {
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "base_url": llm.base_url,
                    "api_key": "sk-test",
                    "messages": [{"role": "system", "content": INSTRUCTIONS}],
                },
            },
            "context": "The caller's books are due on Friday.",
        }
        status, answer = await outbound(backend, body)
        assert status == 200, answer
        call_id = answer["call_id"]
        await wait_status(backend, call_id, ("in-progress",))
        await wait_transcript(backend, call_id, lambda m: m["content"] == GREETING)
        command = {"type": "inject-context", "content": "Opening hours?", "trigger_response": True}
        resp = await backend.client.post(
            f"/calls/{call_id}/control", json=command, headers=backend.auth()
        )
        assert resp.status == 200, await resp.text()
        request = await llm.wait_request()
        assert request.model == "gpt-4o-mini"
        sent = " ".join(str(m.get("content", "")) for m in request.messages)
        assert INSTRUCTIONS in sent, request.messages
        assert "Opening hours?" in sent, request.messages
        assert "Friday" in sent, request.messages  # the call's context reached the LLM
        await wait_transcript(backend, call_id, lambda m: m["content"] == "We open at nine.")
        await hang_up(backend, call_id)


@per_backend(only=EACH_PBX)
async def test_inbound_call_is_answered_with_the_greeting(backend: UserPathBackend) -> None:
    ref = await backend.call_in()
    found: list[dict[str, Any]] = []

    async def listed() -> bool:
        resp = await backend.client.get("/calls?status=in-progress", headers=backend.auth())
        calls = (await resp.json())["calls"]
        found[:] = [c for c in calls if not c["id"].startswith("call-outbound-")]
        return bool(found)

    await until(listed, within=15)
    (call,) = found
    assert call["assistant_phone"] == backend.did
    # The lab's caller speaks as soon as it is answered ("hello world" on Asterisk, the
    # appointment utterance after 1 s on FreeSWITCH), which may cut the greeting short
    # (barge-in): the greeting started, and what was stored is what was played.
    started = await wait_transcript(backend, call["id"], lambda m: m["role"] == "assistant")
    assert GREETING.startswith(started["content"].rstrip(".…")), started

    def said_by_caller(message: dict[str, Any]) -> bool:
        return message["role"] == "user" and backend.caller_words <= words(message["content"])

    async def caller_heard() -> bool:
        return any(said_by_caller(t) for t in transcript(await get_call(backend, call["id"])))

    if backend.caller_words:  # the caller's words are transcribed while the call goes on
        await until(caller_heard, within=30)
    record = await hang_up(backend, call["id"])
    if backend.caller_words:
        assert any(said_by_caller(m) for m in record["messages"]), record["messages"]
    assert record["status"] == "ended"
    assert record["direction"] == "inbound"
    assert record["caller_phone"] != backend.did
    pcm, rate = await backend.caller_heard(ref)
    if not started["interrupted"]:
        assert speech_seconds(pcm, rate) > 0.5  # the caller heard the greeting
