"""OpenTelemetry traces of a real call: REST (with the client's ``traceparent``) → engine → lab
Asterisk → a party that speaks twice → Whisper → the OpenAI-compatible LLM stand-in → Piper,
the service's ``[telemetry]`` exporting over OTLP/HTTP to a receiver on 127.0.0.1 that decodes
what a collector would.

One trace: the client's, its request's span, the call's under it, and a span per turn with
its STT, LLM and TTS children, timed as the call's own latency record says; no transcript
and no phone number in any attribute (the operator did not opt in).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from e2e.audio_helpers import require_offline_speech, wait_transcript, warm_offline_speech, words
from e2e.conftest import serve, service_settings
from e2e.test_audio_e2e import control, wait_recorded
from fakes.llm_standin import LlmStandIn
from telemetry.otlp_receiver import OtlpReceiver, ReceivedSpan
from voicedock.config import TelemetrySettings
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

TWO_TURN_PARTY = "+31612345665"  # listens to the greeting, asks, listens to the answer, asks
GREETING = "Riverside dental clinic."
REPLY = "Monday at nine is free."
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    require_offline_speech()
    await warm_offline_speech()
    async with LlmStandIn(reply=REPLY) as standin:
        yield standin


def children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> dict[str, ReceivedSpan]:
    return {s.name: s for s in spans if s.parent_span_id == parent.span_id}


async def test_a_lab_call_is_one_trace_with_a_span_per_turn_and_no_content(
    lab: LabAsterisk, tmp_path: Path, llm: LlmStandIn
) -> None:
    async with OtlpReceiver() as receiver:
        settings = service_settings(lab, tmp_path / "tracing.db", "ari")
        settings.speech.openai_base_url = llm.base_url
        settings.speech.openai_api_key = "sk-lab-operator"
        settings.speech.llm = "openai"
        settings.telemetry = TelemetrySettings(traces="otlp-http", endpoint=receiver.url)
        live = await serve(settings)
        try:
            body: dict[str, Any] = {
                "destination": TWO_TURN_PARTY,
                "assistant": {
                    "provider": "openai",
                    "first_message": GREETING,
                    "stt_config": {"provider": "offline"},
                    "tts_config": {"provider": "offline"},
                },
            }
            headers = {**live.auth(), "traceparent": TRACEPARENT}
            resp = await live.client.post("/calls/outbound", json=body, headers=headers)
            assert resp.status == 200, await resp.text()
            call_id = str((await resp.json())["call_id"])
            asked = await wait_transcript(
                live,
                call_id,
                lambda m: m["role"] == "user" and "question" in words(m["content"]),
                45,
            )
            await wait_transcript(  # the second answer spoken: its turn's record is complete
                live,
                call_id,
                lambda m: (
                    m["role"] == "assistant"
                    and m["content"] == REPLY
                    and m["started_at"] > asked["ended_at"]
                ),
                30,
            )
            await control(live, call_id, {"type": "end-call"})
            call = await wait_recorded(live, call_id, within=15)
        finally:
            await live.client.close()  # closes the service: its last spans are exported
        spans = list(receiver.spans)

    # One trace, the client's: its request's span, the call's under it.
    assert {s.trace_id for s in spans} == {TRACE_ID}, sorted({s.name for s in spans})
    (request,) = [s for s in spans if s.name == "POST /calls/outbound"]
    assert request.parent_span_id == CLIENT_SPAN
    assert request.attributes["http.response.status_code"] == 200
    (call_span,) = [s for s in spans if s.name == "call outbound"]
    assert call_span.parent_span_id == request.span_id
    assert call_span.attributes["voicedock.call.id"] == call_id
    assert call_span.attributes["voicedock.call.status"] == "ended"
    assert call_span.resource["service.instance.id"] == live.service.engine.node_id
    statuses = [a["voicedock.call.status"] for name, _, a in call_span.events if name == "status"]
    assert statuses[:2] == ["connecting", "in-progress"]

    # A span per answered turn (as many as the call's latency record), each with its STT, LLM
    # and TTS children inside it, one after the other, timed as the record says.
    turns = sorted(
        (s for s in spans if s.name == "turn" and s.parent_span_id == call_span.span_id),
        key=lambda s: s.start_ns,
    )
    records = [t for t in call["latency"] if t.get("tts_first_audio_ms") is not None]
    assert len(turns) >= 2, [s.name for s in spans]
    assert len(turns) == len(call["latency"]), call["latency"]
    model = llm.requests[0].model
    assert {r.model for r in llm.requests} == {model}
    for turn in turns:
        parts = children(spans, turn)
        chat = parts[f"chat {model}"]
        stt, tts = parts["stt"], parts["tts"]
        assert turn.start_ns <= stt.start_ns <= stt.end_ns <= chat.start_ns, turn.attributes
        assert chat.start_ns <= chat.end_ns <= tts.start_ns <= tts.end_ns <= turn.end_ns
        assert turn.end_ns - turn.start_ns < 20e9  # seconds, not minutes
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.request.model"] == model
        assert chat.attributes["gen_ai.provider.name"] == "openai"
        assert stt.attributes["voicedock.stt.provider"] == "offline"  # as the assistant names it
        assert tts.attributes["voicedock.tts.provider"] == "offline"
        record = next(
            r
            for r in records
            if r["stt_final_ms"] == turn.attributes["voicedock.turn.stt_final_ms"]
        )
        assert (stt.end_ns - stt.start_ns) / 1e6 == pytest.approx(record["stt_final_ms"], abs=0.01)
        first_audio = (tts.end_ns - turn.start_ns) / 1e6 - record["endpointing_ms"]
        assert first_audio == pytest.approx(record["tts_first_audio_ms"], abs=0.01)

    # Nothing said, by either side, and no phone number in any attribute.
    values = [v.lower() for s in spans for v in s.every_value()]
    said = {w for m in call["messages"] for w in words(m["content"]) if len(w) >= 6}
    assert said >= {"appointment", "monday", "question", "riverside"}, said
    assert not [(w, v) for w in said for v in values if w in v]
    for number in (TWO_TURN_PARTY, call["assistant_phone"]):
        assert not [v for v in values if number.lstrip("+")[-7:] in v], number
