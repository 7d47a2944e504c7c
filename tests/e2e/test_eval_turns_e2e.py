"""``voicedock eval turns`` on a call the lab Asterisk just carried and voicedock recorded:
the operator's command finds the recording by the call's id and compares both end-of-turn
modes on it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from e2e.audio_helpers import (
    UTTERANCE_PARTY,
    require_offline_speech,
    wait_transcript,
    warm_offline_speech,
    words,
)
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import SHORT_GREETING, control, wait_recorded
from fakes.world import SUPPORT_ID
from voicedock.cli import main
from voicedock.pipeline.hearing import turn_model
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]


@pytest.fixture(autouse=True)
async def _offline_speech() -> None:
    require_offline_speech()
    await warm_offline_speech()
    if not turn_model.installed():
        pytest.skip("needs the turn model's weights (scripts/install-offline-speech.sh)")


@pytest.fixture
async def live(lab: LabAsterisk, tmp_path: Path) -> AsyncIterator[LiveService]:
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    settings.recordings.directory = str(tmp_path / "recordings")
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


async def test_eval_turns_compares_both_modes_on_a_recorded_lab_call(
    live: LiveService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {
        "destination": UTTERANCE_PARTY,
        "assistant_id": SUPPORT_ID,
        "first_message": SHORT_GREETING,
        "record": True,
    }
    resp = await live.client.post("/calls/outbound", json=body, headers=live.auth())
    assert resp.status == 200, await resp.text()
    call_id = str((await resp.json())["call_id"])
    await wait_transcript(live, call_id, lambda m: "appointment" in words(m["content"]), 25)
    await control(live, call_id, {"type": "end-call"})
    await wait_recorded(live, call_id, within=15)

    config = tmp_path / "operator.toml"
    directory = live.service.settings.recordings.directory
    config.write_text(f'[recordings]\ndirectory = "{directory}"\n', encoding="utf-8")
    argv = ["eval", "turns", "--config", str(config), "--call", call_id, "--no-sweep"]
    capsys.readouterr()
    assert await asyncio.to_thread(main, [*argv, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    by_mode = {row["mode"]: row for row in rows if row["call"] == call_id}
    assert set(by_mode) == {"silence", "model"}
    for row in by_mode.values():
        # The party's sentence (said after the greeting) is judged finished at least once,
        # a moment after the party's speech ends.
        assert row["turns"] >= 1, row
        assert row["answer_start_p50_ms"] is not None, row
    assert by_mode["model"]["model_predictions"] >= 1

    assert await asyncio.to_thread(main, argv) == 0
    table = capsys.readouterr().out
    assert f"| {call_id} | silence |" in table
    assert f"| {call_id} | model |" in table
