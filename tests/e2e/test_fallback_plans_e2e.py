"""A provider outage on a real call (REST → engine → lab Asterisk → a party that keeps talking
→ Whisper → OpenAI-compatible stand-ins): the assistant's LLM answers 500 from the second turn
on, and every later turn is answered by the next entry of its fallback plan; the call goes on
and ends normally, and its record names the switch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from e2e.audio_helpers import require_offline_speech
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import control, wait_recorded
from fakes.llm_standin import LlmStandIn
from voicedock.pipeline.providers.piper_tts import PiperTts
from voicedock.pipeline.providers.whisper.stt import WhisperStt
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

TALKER = "+31612345693"  # the lab's soak party: says its appointment sentence every ~4 s
FIRST, SECOND = "Hello, this is the clinic.", "Monday at nine is free."


@pytest.fixture
async def llms() -> AsyncIterator[tuple[LlmStandIn, LlmStandIn]]:
    require_offline_speech()
    await WhisperStt().warm_up()
    await PiperTts().warm_up()
    async with LlmStandIn(reply=FIRST) as primary, LlmStandIn(reply=SECOND) as second:
        yield primary, second


@pytest.fixture
async def live(
    lab: LabAsterisk, tmp_path: Path, llms: tuple[LlmStandIn, LlmStandIn]
) -> AsyncIterator[LiveService]:
    primary, second = llms
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    settings.speech.openai_base_url = primary.base_url  # the operator's LLM
    settings.speech.openai_api_key = "sk-lab-operator"
    # The organization's own fallback server, on loopback here (listed as a provider's host).
    settings.egress.allow_loopback = True
    settings.egress.provider_hosts.append(second.base_url.removeprefix("http://").split("/")[0])
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


def assistant(second: LlmStandIn) -> dict[str, Any]:
    return {
        "first_message": "Hello.",
        "llm_config": {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "fallback_plan": [
                {
                    "provider": "openai-compatible",
                    "base_url": second.base_url,
                    "api_key": "sk-org-own",
                    "model": "backup",
                }
            ],
        },
    }


async def test_a_primary_llm_failing_from_the_second_turn_leaves_the_call_to_the_next_entry(
    live: LiveService, llms: tuple[LlmStandIn, LlmStandIn]
) -> None:
    primary, second = llms
    resp = await live.client.post(
        "/calls/outbound",
        json={"destination": TALKER, "assistant": assistant(second)},
        headers=live.auth(),
    )
    assert resp.status == 200, await resp.text()
    call_id = str((await resp.json())["call_id"])
    await primary.wait_request(timeout=40)  # the first turn, answered
    primary.fail_all(500)
    await second.wait_request(2, timeout=40)  # two later turns, both answered by the backup
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=20)
    assert (ended["status"], ended["end_reason"]) != ("ended", "provider-error")
    assert ended["status"] == "ended"
    said = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    assert FIRST in said
    assert said.count(SECOND) >= 2
    switches = [e["data"] for e in ended["events"] if e["type"] == "provider-switch"]
    assert switches, ended["events"]
    assert {s["engine"] for s in switches} == {"llm"}
    assert switches[0]["from"].startswith("openai/")
    assert switches[0]["to"].endswith("/backup")
    # The breaker: once open, later turns skip the failing server.
    assert len(primary.requests) <= 1 + 3 + 1, len(primary.requests)
    # The backup received the organization's key and the caller's words.
    assert second.requests[0].headers.get("Authorization") == "Bearer sk-org-own"
