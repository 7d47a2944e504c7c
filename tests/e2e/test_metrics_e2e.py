"""``GET /metrics`` after a real call on the lab Asterisk, read with Prometheus's own text
parser: each value is checked against what the call itself recorded."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from e2e.audio_helpers import (
    TALK_OVER_PARTY,
    require_offline_speech,
    wait_transcript,
    warm_offline_speech,
)
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import LONG_GREETING, control, has_words, place_call, wait_recorded
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

TOKEN = "metrics-token-for-the-lab-test"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(live: LiveService, token: str | None = TOKEN) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = await live.client.get("/metrics", headers=headers)
    return resp.status, await resp.text()


def samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


async def test_metrics_after_a_lab_call_match_the_call(lab: LabAsterisk, tmp_path: Path) -> None:
    require_offline_speech()
    await warm_offline_speech()
    settings = service_settings(lab, tmp_path / "metrics.db", "ari")
    settings.metrics.bearer_token = TOKEN
    live = await serve(settings)
    try:
        assert (await scrape(live, None))[0] == 401
        assert (await scrape(live, "wrong-token-of-some-length"))[0] == 401
        # The party talks over the greeting (a barge-in), then is answered.
        call_id = await place_call(live, TALK_OVER_PARTY, LONG_GREETING)
        await wait_transcript(live, call_id, has_words("invoice"), within=25)
        status, text = await scrape(live)
        assert status == 200
        during = samples(text)
        active = value(
            during,
            "voicedock_active_calls",
            trunk="carrier",
            pbx="",
            node=live.service.engine.node_id,
        )
        assert active == 1
        await control(live, call_id, {"type": "end-call"})
        call = await wait_recorded(live, call_id, within=15)
        status, text = await scrape(live)
    finally:
        await live.client.close()
    assert status == 200
    found = samples(text)
    reason = call["end_reason"]
    assert value(found, "voicedock_calls", direction="outbound", status="ended", end_reason=reason)
    assert value(
        found, "voicedock_calls_ended_total", direction="outbound", status="ended",
        end_reason=reason,
    ) == 1  # fmt: skip
    assert not [k for k in found if k[0] == "voicedock_active_calls"]  # none left
    # Originate -> answer: one call, its time as the call's own timestamps say.
    answered = datetime.fromisoformat(call["started_at"].replace("Z", "+00:00"))
    placed = datetime.fromisoformat(call["created_at"].replace("Z", "+00:00"))
    assert value(found, "voicedock_originate_answer_seconds_count", pbx="") == 1
    waited = value(found, "voicedock_originate_answer_seconds_sum", pbx="")
    assert abs(waited - (answered - placed).total_seconds()) < 0.01
    # One STT observation per turn that reached a final transcript, under the Whisper provider.
    turns = [t for t in call["latency"] if t.get("stt_final_ms") is not None]
    assert turns, call["latency"]
    stt_count = value(found, "voicedock_stt_latency_seconds_count", provider="faster_whisper")
    assert stt_count == len(turns)
    stt_sum = value(found, "voicedock_stt_latency_seconds_sum", provider="faster_whisper")
    assert abs(stt_sum - sum(t["stt_final_ms"] for t in turns) / 1000) < 0.01
    # LLM (the offline rule-based one) and TTS (Piper): one observation per turn that has both ends.
    with_llm = [t for t in turns if t.get("llm_first_token_ms") is not None]
    assert value(found, "voicedock_llm_latency_seconds_count", provider="rule_based") == len(
        with_llm
    )
    with_tts = [t for t in with_llm if t.get("tts_first_audio_ms") is not None]
    assert with_tts
    assert value(found, "voicedock_tts_latency_seconds_count", provider="piper") == len(with_tts)
    tts_sum = value(found, "voicedock_tts_latency_seconds_sum", provider="piper")
    expected = sum(t["tts_first_audio_ms"] - t["llm_first_token_ms"] for t in with_tts) / 1000
    assert abs(tts_sum - expected) < 0.01
    interrupted = [
        e for e in call["events"] if e["type"] == "transcript" and e["data"]["interrupted"]
    ]
    # Barge-ins, as the call told them: messages the caller cut short (the greeting at least;
    # not those cut as the call ended); each caller's turn given to the model has its words in
    # the transcript.
    assert interrupted[0]["data"]["content"] != LONG_GREETING
    assert 1 <= value(found, "voicedock_barge_ins_total") <= len(interrupted)
    users = [m for m in call["messages"] if m["role"] == "user"]
    assert 1 <= value(found, "voicedock_caller_turns_total") <= len(users)
    # The greeting and the answer went out as 20 ms frames, roughly on time.
    frames = value(found, "voicedock_media_output_frames_sent_total")
    assert frames > 50  # more than a second of audio
    assert 0 <= value(found, "voicedock_media_output_lateness_seconds_total") / frames < 0.02
    assert value(found, "voicedock_pbx_link_up", pbx="", link="ari") == 1
    assert value(found, "voicedock_pbx_reconnects_total", pbx="", link="ari") == 0
    assert value(found, "voicedock_pbx_can_place_calls", pbx="") == 1
    assert value(found, "voicedock_webhook_outbox_depth") == 0
    # No phone number in any label or value.
    assert TALK_OVER_PARTY.lstrip("+") not in text
    assert call["assistant_phone"].lstrip("+") not in text
