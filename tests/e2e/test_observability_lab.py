"""The shipped dashboards and alerts against a real Prometheus (Debian's ``prometheus``) that
scrapes the service during lab calls (REST → engine → lab Asterisk → the lab's utterance party,
which speaks → stand-ins for the providers: an OpenAI-compatible LLM, OpenAI's speech
endpoints).

Prometheus runs as a subprocess on 127.0.0.1 with the shipped prometheus.yml rendered for the
test (the service's port, a token file, 1 s scrape and evaluation intervals) and the shipped
alerts.yml with every ``for:`` at ``FOR_S`` (the shipped minutes are checked by ``promtool
test rules``, tests/observability/alerts_test.yml). Two calls talk, one after the other, so
that every counter and histogram moves between scrapes; then every target of every panel of
the shipped dashboards, with Grafana's variables at "All" and ``$__rate_interval`` at 1m, is
asked of Prometheus over the test's time range as Grafana's panels ask it (``query_range``)
and must return a series with a value. Then the LLM stand-in stops: three calls' turns fail,
the LLM's breaker opens and Prometheus fires VoicedockProviderDown for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import control, wait_recorded
from e2e.test_calls_e2e import get_call
from fakes.llm_standin import LlmStandIn
from fakes.speech_standin import SpeechStandIn
from observability.stack import (
    PanelQuery,
    Prometheus,
    panel_queries,
    render_config,
    running_prometheus,
    shortened_rules,
)
from voicedock.config import FallbackPlansSettings
from voicedock.pipeline.pools.provider_health import FAILURES_TO_OPEN
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk, pytest.mark.timeout(150)]

UTTERANCE_PARTY = "+31612345673"  # answers, says its appointment sentence after 3 s, waits 20 s
TOKEN = "lab-metrics-token-0123456789"
REPLY = "Monday at nine is free."
CLOSING = "Sorry, we have a technical problem. Goodbye!"
FOR_S = 2  # the rendered alerts' `for:`
TERMINAL = ("ended", "failed")


def assistant(speech: SpeechStandIn) -> dict[str, Any]:
    """The operator's LLM (the LLM stand-in); the organization's cloud speech (the other)."""
    cloud = {"provider": "openai", "base_url": speech.base_url, "api_key": "sk-org-own"}
    return {
        "first_message": "Hello, this is the clinic.",
        "stt_config": {**cloud, "model": "whisper-1"},
        "tts_config": {**cloud, "voice": "alloy"},
        "llm_config": {"provider": "openai", "model": "gpt-4o-mini"},
    }


async def place(live: LiveService, speech: SpeechStandIn) -> str:
    status, body = await live.post(
        "/calls/outbound", {"destination": UTTERANCE_PARTY, "assistant": assistant(speech)}
    )
    assert status == 200, body
    return str(body["call_id"])


async def value(prometheus: Prometheus, expr: str) -> float:
    """The instant value of a one-series query (0 while it has none)."""
    result = (await prometheus.get("/api/v1/query", query=expr))["result"]
    return float(result[0]["value"][1]) if result else 0.0


async def scraped_beyond(prometheus: Prometheus, expr: str, floor: float) -> float:
    """Waits until Prometheus holds ``expr`` above ``floor`` (it scraped what the service
    counted); returns the value."""
    async with asyncio.timeout(15):
        while (seen := await value(prometheus, expr)) <= floor:
            await asyncio.sleep(0.2)
    return seen


async def spoken(speech: SpeechStandIn, count: int) -> None:
    """The voice was asked for the LLM's reply ``count`` times."""
    async with asyncio.timeout(30):
        while speech.spoken.count(REPLY) < count:
            await asyncio.sleep(0.05)


async def has_data(prometheus: Prometheus, query: PanelQuery, start: float) -> bool:
    """The panel's query, as Grafana asks it (a range, 1 s a step), has a value somewhere."""
    result = (
        await prometheus.get(
            "/api/v1/query_range",
            query=query.promql,
            start=f"{start:.3f}",
            end=f"{time.time():.3f}",
            step="1",
        )
    )["result"]
    return any(math.isfinite(float(v)) for series in result for _, v in series["values"])


async def firing(prometheus: Prometheus, alert: str, **labels: str) -> dict[str, Any] | None:
    for found in (await prometheus.get("/api/v1/alerts"))["alerts"]:
        mine = found["labels"].get("alertname") == alert
        if mine and all(found["labels"].get(k) == v for k, v in labels.items()):
            return dict(found)
    return None


async def end(live: LiveService, call_id: str) -> None:
    """Hangs up ``call_id`` unless it ended already."""
    if (await get_call(live, call_id))["status"] not in TERMINAL:
        with contextlib.suppress(AssertionError):  # it ended meanwhile
            await control(live, call_id, {"type": "end-call"})


async def test_every_panel_has_data_during_lab_calls_and_a_stopped_llm_fires_provider_down(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    began = time.monotonic()
    llm = LlmStandIn(reply=REPLY)
    await llm.__aenter__()
    llm_running = True
    async with SpeechStandIn(transcript="I would like to book an appointment on Monday.") as speech:
        settings = service_settings(lab, tmp_path / "observability.db", "ari")
        settings.metrics.bearer_token = TOKEN
        settings.recordings.directory = str(tmp_path / "recordings")
        settings.speech.openai_base_url = llm.base_url
        settings.speech.openai_api_key = "sk-lab-operator"
        settings.egress.allow_loopback = True
        settings.egress.provider_hosts.append(speech.host)
        # The operator's default LLM plan closes a call politely after the model: the
        # provider metrics count an engine with a plan (a provider alone has no breaker).
        settings.speech.fallback_plans = msgspec.convert(
            {"llm": [{"provider": "rule_based", "closing": CLOSING}]}, FallbackPlansSettings
        )
        for number in settings.numbers:
            number.max_concurrent_calls = FAILURES_TO_OPEN
        live = await serve(settings)
        token = tmp_path / "voicedock.token"
        token.write_text(TOKEN)
        config = render_config(
            tmp_path / "prometheus.yml",
            target=f"127.0.0.1:{live.client.port}",
            token_file=token,
            rule_files=[shortened_rules(tmp_path / "alerts.yml", FOR_S)],
            interval_s=1,
        )
        try:
            async with running_prometheus(config, tmp_path) as prometheus:
                start = time.time()
                await scraped_beyond(prometheus, 'up{job="voicedock"}', 0)
                # Two calls that talk; the second answered, then stored, once Prometheus has
                # scraped the first's answer, then its record: every counter and histogram
                # moves between two scrapes (a rate needs two samples).
                first = await place(live, speech)
                await spoken(speech, 1)
                answered = "sum(voicedock_originate_answer_seconds_count)"
                await scraped_beyond(prometheus, answered, 0)
                second = await place(live, speech)
                await end(live, first)
                await wait_recorded(live, first, within=20)
                turns = "sum(voicedock_stt_latency_seconds_count)"
                stored = await scraped_beyond(prometheus, turns, 0)
                await spoken(speech, 2)
                await end(live, second)
                await wait_recorded(live, second, within=20)
                await scraped_beyond(prometheus, turns, stored)
                await scraped_beyond(prometheus, answered, 1)
                # Every panel's query, as Grafana asks it over the time range (until the last
                # scrape's values have an evaluation step of their own).
                queries = panel_queries()
                assert len(queries) > 30
                try:
                    async with asyncio.timeout(20):
                        while queries := [
                            q for q in queries if not await has_data(prometheus, q, start)
                        ]:
                            await asyncio.sleep(0.5)
                except TimeoutError:
                    empty = "\n".join(f"{q}: {q.promql}" for q in queries)
                    raise AssertionError(f"panels without data:\n{empty}") from None
                provider_down = ("VoicedockProviderDown", {"engine": "llm", "provider": "openai"})
                assert await firing(prometheus, provider_down[0], **provider_down[1]) is None
                # The LLM stops answering: the next calls' turns fail until its breaker opens.
                await llm.__aexit__(None, None, None)
                llm_running = False
                outage = await asyncio.gather(
                    *(place(live, speech) for _ in range(FAILURES_TO_OPEN))
                )
                try:
                    async with asyncio.timeout(45):
                        while (
                            alert := await firing(prometheus, provider_down[0], **provider_down[1])
                        ) is None or alert["state"] != "firing":
                            await asyncio.sleep(0.25)
                except TimeoutError:
                    alerts = (await prometheus.get("/api/v1/alerts"))["alerts"]
                    raise AssertionError(f"{provider_down} never fired: {alerts}") from None
                assert alert["labels"]["severity"] == "page"
                assert alert["annotations"]["summary"] == "Provider openai (llm) is failing"
                breakers = 'voicedock_provider_breakers_open{engine="llm",provider="openai"}'
                assert await value(prometheus, breakers) == 1
                failures = 'voicedock_provider_failures_total{engine="llm",provider="openai"}'
                assert await value(prometheus, failures) >= FAILURES_TO_OPEN
                for call_id in outage:
                    await end(live, call_id)
                    await wait_recorded(live, call_id, within=20)
        finally:
            await live.client.close()
            if llm_running:
                await llm.__aexit__(None, None, None)
    print(f"observability lab test: {time.monotonic() - began:.1f} s")
