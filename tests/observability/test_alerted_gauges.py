"""The gauges two alerts read, through ``GET /metrics`` of the real app (FakePbx): the free
space of the recordings' disk (VoicedockRecordingsDiskLow) and the breakers open per provider
(VoicedockProviderDown), which reads 0 for a provider in use whose breakers are closed, so a
dashboard shows the line before the outage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from api.test_metrics_api import TOKEN, samples
from e2e.conftest import start_app
from fakes.pbx import FakePbx
from fakes.world import make_settings
from voicedock.pipeline.pools.provider_health import FAILURES_TO_OPEN, Endpoint

pytestmark = pytest.mark.unit

NO_LABELS = ()


async def scraped(tmp_path: Path, recordings: str, *, llm_failures: int = -1) -> str:
    """``/metrics`` of an app with ``[recordings] directory = recordings``; with
    ``llm_failures`` >= 0, an LLM endpoint that answered once, then failed that many times."""
    settings = make_settings(f"sqlite:///{tmp_path / 'm.db'}")
    settings.metrics.bearer_token = TOKEN
    settings.recordings.directory = recordings
    client, service = await start_app(settings, FakePbx())
    try:
        if llm_failures >= 0:
            health = service.speech.provider_health
            endpoint = Endpoint("llm", "openai", "https://api.openai.com/v1", "gpt-4o-mini")
            attempt = health.attempt(endpoint)
            assert attempt is not None
            attempt.succeeded()
            for _ in range(llm_failures):
                failing = health.attempt(endpoint)
                assert failing is not None
                failing.failed()
        resp = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert resp.status == 200
        return await resp.text()
    finally:
        await client.close()


async def test_the_recordings_disk_free_space_is_that_of_its_file_system(tmp_path: Path) -> None:
    # Before the first recording the directory does not exist: its parent's file system.
    found = samples(await scraped(tmp_path, str(tmp_path / "recordings" / "not-yet")))
    usage = shutil.disk_usage(tmp_path)
    free = found[("voicedock_recordings_disk_free_bytes", NO_LABELS)]
    ratio = found[("voicedock_recordings_disk_free_ratio", NO_LABELS)]
    assert abs(free - usage.free) < 256 * 1024 * 1024  # others write to the disk meanwhile
    assert ratio == pytest.approx(usage.free / usage.total, abs=0.01)
    assert 0 < ratio <= 1


async def test_no_recordings_disk_without_recordings(tmp_path: Path) -> None:
    text = await scraped(tmp_path, "")
    assert "voicedock_recordings_disk" not in text


async def test_breakers_open_reads_zero_until_a_provider_fails_enough(tmp_path: Path) -> None:
    labels = (("engine", "llm"), ("provider", "openai"))
    healthy = samples(await scraped(tmp_path / "healthy", "", llm_failures=0))
    assert healthy[("voicedock_provider_breakers_open", labels)] == 0
    assert healthy[("voicedock_provider_requests_total", labels)] == 1
    down = samples(await scraped(tmp_path / "down", "", llm_failures=FAILURES_TO_OPEN))
    assert down[("voicedock_provider_breakers_open", labels)] == 1
    assert down[("voicedock_provider_failures_total", labels)] == FAILURES_TO_OPEN
