"""An analysis template on a real call: REST (a template, an assistant whose analysis_plan
names it) → engine → lab Asterisk → a speaking party → Whisper → the OpenAI-compatible
stand-in → after the hang-up, the end-of-call analysis asked of the stand-in with the
template's prompt, rubric and schema, and its answer stored as the call's analysis_result.

The lab's utterance party says "I would like to book an appointment on Monday." three seconds
after answering; the model answers it; the user ends the call.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from e2e.audio_helpers import UTTERANCE_PARTY, require_offline_speech, wait_transcript
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import control, wait_recorded
from fakes.llm_standin import ChatRequest, LlmStandIn
from voicedock.pipeline.providers.piper_tts import PiperTts
from voicedock.pipeline.providers.whisper.stt import WhisperStt
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

BOOKED = "You are booked for Monday."
TEMPLATE = {
    "name": "Dental booking",
    "summary_prompt": "Name the weekday the caller asked for.",
    "structured_data_schema": {
        "type": "object",
        "properties": {"requested_weekday": {"type": "string"}},
        "required": ["requested_weekday"],
    },
    "success_evaluation_rubric": "Did the caller get an appointment?",
}
EXTRACTED = {"requested_weekday": "Monday"}


def model(request: ChatRequest) -> str:
    """Answers the caller; asked to analyse the call (after it), answers the plan's fields."""
    if (request.system_prompt or "").startswith("You analyse phone calls"):
        answer = {
            "summary": "The caller booked Monday.",
            "sentiment": 7,
            "structured_data": EXTRACTED,
            "success_evaluation": "yes",
        }
        return json.dumps(answer)
    return BOOKED


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    require_offline_speech()
    await WhisperStt().warm_up()
    await PiperTts().warm_up()
    async with LlmStandIn(reply=model) as standin:
        yield standin


@pytest.fixture
async def live(lab: LabAsterisk, tmp_path: Path, llm: LlmStandIn) -> AsyncIterator[LiveService]:
    settings = service_settings(lab, tmp_path / "analysis-templates.db", "ari")
    settings.speech.openai_base_url = llm.base_url
    settings.speech.openai_api_key = "sk-lab-operator"
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


async def test_the_end_of_call_analysis_uses_the_referenced_template(
    live: LiveService, llm: LlmStandIn
) -> None:
    h = live.auth()
    made = await live.client.post("/analysis-templates", json=TEMPLATE, headers=h)
    assert made.status == 201, await made.text()
    template_id = (await made.json())["id"]
    assistant = {
        "name": "Riverside bookings",
        "provider": "openai",
        "first_message": "Riverside dental clinic.",
        "stt_config": {"provider": "offline"},
        "tts_config": {"provider": "offline"},
        "system_prompt": "You book appointments for the Riverside dental clinic.",
        "analysis_plan": {"template_id": template_id},
    }
    saved = await live.client.post("/assistants", json=assistant, headers=h)
    assert saved.status == 201, await saved.text()
    placed = await live.client.post(
        "/calls/outbound",
        json={"destination": UTTERANCE_PARTY, "assistant_id": (await saved.json())["id"]},
        headers=h,
    )
    assert placed.status == 200, await placed.text()
    call_id = str((await placed.json())["call_id"])

    # The caller's words reached the model, which answered them; then the user hangs up.
    await wait_transcript(
        live, call_id, lambda m: m["role"] == "assistant" and m["content"] == BOOKED, within=40
    )
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=30)

    # The analysis request carried the template's prompt, rubric and schema...
    analysing = llm.requests[-1]
    prompt = analysing.system_prompt or ""
    assert prompt.startswith("You analyse phone calls"), prompt
    assert TEMPLATE["summary_prompt"] in prompt
    assert TEMPLATE["success_evaluation_rubric"] in prompt
    assert '"requested_weekday"' in prompt
    heard = " ".join(m.get("content") or "" for m in analysing.messages)
    assert "monday" in heard.lower(), heard  # the transcript of the call, the caller's words
    # ...and its answer, valid under the template's schema, is the call's analysis.
    result = ended["analysis_result"]
    assert result["method"] == "llm", result
    assert result["structured_data"] == EXTRACTED, result
    assert result["success_evaluation"] == "yes", result

    # The template, still named by the assistant, stays.
    kept = await live.client.delete(f"/analysis-templates/{template_id}", headers=h)
    assert kept.status == 409
