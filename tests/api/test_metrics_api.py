"""``GET /metrics`` through the real app (FakePbx): off without a token, its own bearer token
(not an API key), stored calls counted by status, parsed by Prometheus's text parser."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.conftest import start_api
from e2e.conftest import start_app
from fakes.pbx import FakePbx
from fakes.world import ACME, DESTINATION, SUPPORT_ID, make_settings
from voicedock.api.api_keys import issue_api_key
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
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
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
