"""``GET /metrics`` through the real app (FakePbx): off without a token, its own bearer token
(not an API key), stored calls counted by status, parsed by Prometheus's text parser."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.conftest import start_api
from e2e.conftest import start_app
from fakes.calls import call_finished
from fakes.pbx import FakePbx, MediaFakePbx
from fakes.world import ACME, DESTINATION, SUPPORT_ID, make_settings
from media.fake_asterisk import FakeAsterisk
from pipeline.fakes import FakeStt, FakeTts, ToolFirstLlm, registered
from pipeline.synth import silence, voiced
from voicedock.api.api_keys import issue_api_key
from voicedock.media.codecs import ulaw_encode
from voicedock.media.output_totals import OutputTotals
from voicedock.media.pacer import PacerStats

pytestmark = pytest.mark.unit

TOKEN = "a-metrics-token-0123456789"


async def test_metrics_are_off_without_a_token(tmp_path: Path) -> None:
    client, service, _ = await start_api(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        key, _ = await issue_api_key(service.store, ACME)
        resp = await client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
        assert resp.status == 404
    finally:
        await client.close()


async def test_metrics_need_their_token_and_count_stored_calls(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'm.db'}")
    settings.metrics.bearer_token = TOKEN
    client, service = await start_app(settings, FakePbx())
    try:
        key, _ = await issue_api_key(service.store, ACME)
        auth = {"Authorization": f"Bearer {key}"}
        assert (await client.get("/metrics", headers=auth)).status == 401  # an API key is not it
        placed = await client.post(
            "/calls/outbound",
            json={"destination": DESTINATION, "assistant_id": SUPPORT_ID},
            headers=auth,
        )
        assert placed.status == 200
        resp = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await resp.text()
    finally:
        await client.close()
    found = samples(text)
    connecting = (("direction", "outbound"), ("end_reason", ""), ("status", "connecting"))
    assert found[("voicedock_calls", connecting)] == 1
    assert DESTINATION.lstrip("+") not in text


async def test_output_totals_keep_what_ended_calls_sent() -> None:
    totals = OutputTotals()
    first, second = PacerStats(), PacerStats()
    async with totals.track(first):
        first.record(0.002)
        first.record(0.004)
        async with totals.track(second):
            second.record(0.001)
            assert totals.snapshot().frames_sent == 3
    second.record(0.5)  # after the call ended: not counted
    counts = totals.snapshot()
    assert counts.frames_sent == 3
    assert counts.lateness_seconds == pytest.approx(0.007)


TEST_PROVIDER = "metrics-events-test"
LONG_GREETING = (
    "Hello and welcome to the city library, where our opening hours are from nine in the "
    "morning until six in the evening, from Monday to Saturday, and on Sunday we are closed."
)


@pytest.fixture
def speech() -> Iterator[tuple[FakeStt, ToolFirstLlm, FakeTts]]:
    """The model ends the call with its ``end_call`` tool, then says goodbye."""
    made = (
        FakeStt(["That is all, thanks."]),
        ToolFirstLlm("end_call", then="Goodbye."),
        FakeTts(8000, ms_per_char=30),
    )
    with registered(TEST_PROVIDER, *made):
        yield made


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def talked_call(
    tmp_path: Path, override: Mapping[str, object], said: bytes
) -> tuple[dict[str, Any], Samples]:
    """An outbound call whose callee says ``said`` (PCM) once the greeting is being played
    and which the model ends: the call as ``GET /calls/{id}`` shows it, and ``/metrics``."""
    settings = make_settings(f"sqlite:///{tmp_path / 'live.db'}")
    settings.metrics.bearer_token = TOKEN
    settings.speech.stt = settings.speech.llm = settings.speech.tts = TEST_PROVIDER
    async with FakeAsterisk(send_audio=False) as fake:
        pbx = MediaFakePbx(fake)
        client, service = await start_app(settings, pbx)
        try:
            key, _ = await issue_api_key(service.store, ACME)
            auth = {"Authorization": f"Bearer {key}"}
            body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
            body["assistant_override"] = override  # type: ignore[assignment]
            resp = await client.post("/calls/outbound", json=body, headers=auth)
            assert resp.status == 200, await resp.text()
            call_id = str((await resp.json())["call_id"])
            await pbx.answer(call_id)
            async with asyncio.timeout(5):
                while not (fake.channels and fake.channel().marks_processed):
                    await asyncio.sleep(0.01)  # the greeting is being played
            await asyncio.sleep(0.3)
            wire = ulaw_encode(said)
            for start in range(0, len(wire) - 159, 160):
                await fake.channel().ws.send_bytes(wire[start : start + 160])
                await asyncio.sleep(0.02)
            async with asyncio.timeout(10):
                await call_finished(service.runner, call_id)
            call = await (await client.get(f"/calls/{call_id}", headers=auth)).json()
            metrics = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            text = await metrics.text()
        finally:
            await client.close()
    found = samples(text)
    return call, found


async def test_a_live_calls_barge_in_turn_and_tool_call_are_counted_as_they_happen(
    tmp_path: Path, speech: tuple[FakeStt, ToolFirstLlm, FakeTts]
) -> None:
    """A caller talks over the greeting, and the model ends the call with its tool: the
    metrics count the barge-in, the turn and the tool call the call told as it ran, and the
    call's record shows the same."""
    override = {"first_message": LONG_GREETING, "tools": [{"type": "end_call"}]}
    call, found = await talked_call(tmp_path, override, voiced(600) + silence(500))
    roles = [m["role"] for m in call["messages"]]
    assert roles == ["assistant", "user", "tool_calls", "tool"], call["messages"]
    greeting = call["messages"][0]["content"]
    assert greeting != LONG_GREETING  # cut as the caller heard it
    assert LONG_GREETING.startswith(greeting)
    assert '"end_call"' in call["messages"][2]["content"]
    assert call["end_reason"] == "assistant-ended-call"
    assert found[("voicedock_barge_ins_total", ())] == 1
    assert found[("voicedock_caller_turns_total", ())] == 1
    assert found[("voicedock_tool_calls_total", (("outcome", "ok"),))] == 1
    assert found[("voicedock_tool_call_seconds_count", ())] == 1


@pytest.fixture
def resuming_speech() -> Iterator[tuple[FakeStt, ToolFirstLlm, FakeTts]]:
    """The caller's words take a while to transcribe; the model ends the call with its tool."""
    made = (
        FakeStt(["I would like a table for two."] * 2, delay=0.5),
        ToolFirstLlm("end_call", then="Goodbye."),
        FakeTts(8000),
    )
    with registered(TEST_PROVIDER, *made):
        yield made


async def test_a_caller_going_on_right_after_being_judged_finished_is_an_early_cut_off(
    tmp_path: Path, resuming_speech: tuple[FakeStt, ToolFirstLlm, FakeTts]
) -> None:
    """A caller pauses mid-sentence long enough to be judged finished and goes on a moment
    later: the metrics count the early cut-off as the call tells it, and the call's latency
    record marks the turn the caller went on in."""
    # "I would like ... a table for two" after the short greeting: a pause past the end of
    # turn's silence (the turn is judged finished), then the caller goes on well within 1 s.
    said = voiced(600) + silence(900) + voiced(600) + silence(700)
    call, found = await talked_call(tmp_path, {"tools": [{"type": "end_call"}]}, said)
    assert call["end_reason"] == "assistant-ended-call"
    users = [m["content"] for m in call["messages"] if m["role"] == "user"]
    assert users == ["I would like a table for two."]  # one turn: the words before and after
    assert [turn["early_cut_offs"] for turn in call["latency"]] == [1], call["latency"]
    assert found[("voicedock_early_cut_offs_total", ())] == 1
    assert found[("voicedock_caller_turns_total", ())] == 1


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Each sample of a /metrics exposition by its name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
