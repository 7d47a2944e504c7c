"""The operator's default fallback plans on a real call (REST → engine → lab Asterisk → a party
that keeps talking → Whisper → OpenAI-compatible stand-ins for the operator's LLM and voice):
an assistant that names no plan gets ``[speech.fallback_plans]``. The operator's LLM and voice
fail, the operator's backup model and Piper take over, ``/health`` shows the open breaker, and
when the backup fails too the rule-based entry closes the call politely; the call's record
names each turn's providers, counts the switches in its end-of-call report and bills each
provider its own use."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import pytest
from aiohttp import web
from yarl import URL

from e2e.audio_helpers import require_offline_speech
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import wait_recorded
from e2e.test_provider_keys_e2e import TONE
from fakes.llm_standin import LlmStandIn
from fakes.world import ACME
from voicedock.config import FallbackPlansSettings, WebhookEndpointSettings
from voicedock.domain.webhooks import generate_secret
from voicedock.pipeline.providers.piper_tts import PiperTts
from voicedock.pipeline.providers.whisper.stt import WhisperStt
from voicedock_lab.server import LabAsterisk
from webhooks.receiver import Receiver, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

TALKER = "+31612345693"  # the lab's soak party: says its appointment sentence every ~4 s
FIRST, SECOND = "Hello, this is the clinic.", "Monday at nine is free."


CLOSING = "Sorry, we have a technical problem. Please call again later. Goodbye!"
METRICS_TOKEN = "lab-metrics-token-0123456789"


@dataclass
class Voice:
    """OpenAI's speech endpoint on the operator's server: a tone per sentence, a 500 once
    failing."""

    failing: bool = False
    spoken: list[str] = field(default_factory=list)

    async def speech(self, request: web.Request) -> web.StreamResponse:
        self.spoken.append(str((await request.json()).get("input", "")))
        if self.failing:
            return web.json_response({"error": {"message": "The server had an error"}}, status=500)
        return web.Response(body=TONE, content_type="application/octet-stream")


@dataclass
class OperatorCloud:
    primary: LlmStandIn  # the operator's LLM ([speech] llm) and voice ([speech] tts)
    backup: LlmStandIn  # the operator's default plan's next LLM entry
    voice: Voice
    receiver: Receiver  # the organization's webhook endpoint


@pytest.fixture
async def cloud() -> AsyncIterator[OperatorCloud]:
    require_offline_speech()
    await WhisperStt().warm_up()
    await PiperTts().warm_up()
    voice = Voice()
    receiver = Receiver(generate_secret())
    await receiver.start()
    primary, backup = LlmStandIn(reply=FIRST), LlmStandIn(reply=SECOND)
    primary.route("POST", "/v1/audio/speech", voice.speech)
    try:
        async with primary, backup:
            yield OperatorCloud(primary, backup, voice, receiver)
    finally:
        await receiver.stop()


@pytest.fixture
async def operator_live(
    lab: LabAsterisk, tmp_path: Path, cloud: OperatorCloud
) -> AsyncIterator[LiveService]:
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    speech = settings.speech
    speech.llm, speech.tts = "openai", "openai"
    speech.openai_base_url, speech.openai_api_key = cloud.primary.base_url, "sk-lab-operator"
    speech.fallback_plans = msgspec.convert(
        {
            "llm": [
                {
                    "provider": "openai-compatible",
                    "base_url": cloud.backup.base_url,
                    "api_key": "sk-operator-backup",
                    "model": "backup",
                },
                {"provider": "rule_based", "closing": CLOSING},
            ],
            "tts": [{"provider": "piper"}],
        },
        FallbackPlansSettings,
    )
    settings.metrics.bearer_token = METRICS_TOKEN
    # The webhook receiver's port only: the providers' loopback servers are allowed because
    # they are the operator's ([speech] and its plans), never by an [egress] rule.
    settings.egress.allowed_networks = [f"127.0.0.1:{URL(cloud.receiver.url).port}"]
    secret = cloud.receiver.secret
    settings.webhooks.endpoints = [
        WebhookEndpointSettings(
            name="lab", organization=ACME, url=cloud.receiver.url, secret=secret
        )
    ]
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


async def test_the_operators_default_plan_takes_over_for_an_assistant_that_names_none(
    operator_live: LiveService, cloud: OperatorCloud
) -> None:
    live, primary, backup, voice = operator_live, cloud.primary, cloud.backup, cloud.voice
    resp = await live.client.post(
        "/calls/outbound",
        json={"destination": TALKER, "assistant": {"first_message": "Hello."}},  # no plan
        headers=live.auth(),
    )
    assert resp.status == 200, await resp.text()
    call_id = str((await resp.json())["call_id"])
    await primary.wait_request(timeout=40)  # the first turn, answered by the operator's LLM
    primary.fail_all(500)
    await wait_until(lambda: FIRST in voice.spoken, timeout=20)  # in the operator's voice
    voice.failing = True
    # Three failing turns open the operator's LLM's breaker; the backup answers each.
    await backup.wait_request(3, timeout=60)
    public = await (await live.client.get("/health")).json()
    operator = await (
        await live.client.get("/health", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    ).json()
    backup.fail_all(500)  # the backup goes too: the rule-based entry closes the call
    ended = await wait_recorded(live, call_id, within=60)

    assert {"engine": "llm", "provider": "openai", "state": "open"} in public["providers"]
    assert not any("endpoint" in breaker for breaker in public["providers"])
    primary_label = f"openai/127.0.0.1:{URL(primary.base_url).port}/gpt-4o-mini"
    assert {
        "engine": "llm",
        "provider": "openai",
        "state": "open",
        "endpoint": primary_label,
    } in operator["providers"]
    assert (public["status"], public["can_place_calls"]) == ("ok", True)

    # Closed politely by the last entry, not failed.
    assert (ended["status"], ended["end_reason"]) == ("ended", "assistant-ended-call")
    said = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    assert FIRST in said
    assert SECOND in said
    assert said[-1] == CLOSING
    # The operator's backup received the operator's own key and the caller's words.
    assert backup.requests[0].headers.get("Authorization") == "Bearer sk-operator-backup"
    assert backup.requests[0].last_user_text
    assert len(primary.requests) <= 1 + 3 + 1  # its breaker kept later turns away
    # The operator's voice failed once, on the second turn's reply: Piper spoke it, and the
    # call kept Piper.
    assert voice.spoken == ["Hello.", FIRST, SECOND]

    # Each turn names the providers that served it.
    turns = ended["latency"]
    llms = [turn["llm_provider"] for turn in turns]
    backup_label = f"openai-compatible/127.0.0.1:{URL(backup.base_url).port}/backup"
    assert llms[0] == primary_label
    assert backup_label in llms
    assert set(llms) <= {llms[0], backup_label, "rule_based"}
    voices = [turn["tts_provider"] for turn in turns]
    assert voices == [f"openai/127.0.0.1:{URL(primary.base_url).port}"] + ["piper"] * (
        len(turns) - 1
    )
    assert {turn["stt_provider"] for turn in turns} == {"faster_whisper"}

    # The switches, each an event, counted on the record and in the end-of-call report.
    switches = [e["data"] for e in ended["events"] if e["type"] == "provider-switch"]
    assert {(s["engine"], s["to"]) for s in switches} >= {
        ("llm", backup_label),
        ("tts", "piper"),
        ("llm", "rule_based"),
    }
    assert any(s["reason"] == "breaker-open" for s in switches)
    assert ended["provider_switches"] == len(switches)
    await wait_until(
        lambda: any(
            json.loads(r.body)["type"] == "end-of-call-report" for r in cloud.receiver.requests
        ),
        timeout=20,
    )
    (report,) = [
        body
        for body in (json.loads(r.body) for r in cloud.receiver.requests)
        if body["type"] == "end-of-call-report"
    ]
    assert report["data"]["provider_switches"] == len(switches)
    assert report["data"]["latency"] == turns

    # Each provider is billed its own use: the call's and the organization's usage.
    usage = ended["usage"]
    assert [e["provider"] for e in usage["tts"]] == ["openai", "piper"]
    assert all(e["characters"] > 0 for e in usage["tts"])
    assert [e["provider"] for e in usage["stt"]] == ["faster_whisper"]
    assert report["data"]["usage"] == usage
    totals = (await (await live.client.get("/usage", headers=live.auth())).json())["totals"]
    assert totals["tts"] == usage["tts"]
