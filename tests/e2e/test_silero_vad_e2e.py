"""Silero VAD on a real call: the operator's ``[speech.vad] engine = "silero"``, REST → engine →
lab Asterisk → a speaking party → Silero VAD and endpointing → Whisper → the reply the party
hears."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from e2e.audio_helpers import (
    UTTERANCE_PARTY,
    read_new_recording,
    require_offline_speech,
    speech_seconds,
    wait_transcript,
    warm_offline_speech,
    words,
)
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import control, has_words, place_call, wait_recorded
from voicedock.config import ConfigError
from voicedock.pipeline.hearing import silero_vad
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

GREETING = "Hello, this is the library. How can I help you?"


@pytest.fixture
async def live_silero(lab: LabAsterisk, tmp_path: Path) -> AsyncIterator[LiveService]:
    require_offline_speech()
    assert silero_vad.available()  # installed with faster-whisper
    await warm_offline_speech()
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    settings.speech.vad.engine = "silero"
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


async def test_the_party_is_heard_through_silero_vad_and_answered(
    live_silero: LiveService, lab: LabAsterisk
) -> None:
    live = live_silero
    before = set(lab.recordings_dir.glob("utterance-*-rx.wav"))
    call_id = await place_call(live, UTTERANCE_PARTY, GREETING)
    await wait_transcript(live, call_id, has_words("appointment", "monday"), within=25)
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=15)
    user = [m["content"] for m in ended["messages"] if m["role"] == "user"]
    assert any({"appointment", "monday"} <= words(content) for content in user), user
    assert len(user) == 1, user  # one sentence, one turn: no pause cut it, no noise split it
    pcm, rate = await read_new_recording(lab.recordings_dir, "utterance-*-rx.wav", before)
    assert speech_seconds(pcm, rate) > 0.5  # the party heard the greeting


async def test_silero_on_a_node_without_its_model_stops_start_up(
    lab: LabAsterisk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(silero_vad, "available", lambda: False)
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    settings.speech.vad.engine = "silero"
    with pytest.raises(ConfigError, match=r"speech\.vad\.engine"):
        await serve(settings)  # refused before anything runs
