"""A fallback plan on the real lab FreeSWITCH: the operator's model stops midway through a
reply and the organization's backup finishes it; the party (the demo party, recording what it
hears) hears the sentence said before the stall once, then the rest, never a half sentence or
a sentence twice. The same call as ``tests/e2e/test_fallback_plans_e2e.py`` makes on Asterisk,
with the offline engines (Whisper hears the party, Piper speaks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.audio_helpers import read_finished_recording, transcribe
from e2e.test_audio_e2e import wait_recorded
from e2e.test_fallback_plans_e2e import (
    OPERATOR_KEY,
    assert_finished_once,
    finished_once,
    finishing,
    offline_speech,  # noqa: F401 (the fixture)
    stalling_models,
)
from freeswitch_lab.lab_service import LabFreeswitchService, lab_settings, serve_on_lab
from voicedock_lab.freeswitch import LabFreeswitch
from voicedock_lab.freeswitch_config import DEMO

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(90)]


async def test_a_reply_whose_llm_stops_midway_is_finished_by_the_next_entry_and_heard_once(
    freeswitch_lab: LabFreeswitch,
    tmp_path: Path,
    offline_speech: None,  # noqa: F811
) -> None:
    async with stalling_models() as (primary, second):
        settings = lab_settings(freeswitch_lab, tmp_path / "fslab.db", None)
        settings.speech.openai_base_url = primary.base_url  # the operator's model
        settings.speech.openai_api_key = OPERATOR_KEY
        async with serve_on_lab(freeswitch_lab, settings) as (client, service, key):
            live = LabFreeswitchService(client, service, key, freeswitch_lab)
            status, reply = await live.post(
                "/calls/outbound", {"destination": DEMO, "assistant": finishing(second)}
            )
            assert status == 200, reply
            call_id = str(reply["call_id"])
            channel = await live.channel_of(call_id, within=10)
            sip_call_id = await live.getvar(channel, "sip_call_id")
            asked = await second.wait_request(timeout=45)
            await finished_once(live, call_id, primary)
            ended = await wait_recorded(live, call_id, within=20)
            recording = freeswitch_lab.recordings_dir / f"{DEMO}-{sip_call_id}.wav"
            pcm, rate = await read_finished_recording(recording)
    assert_finished_once(ended, asked, await transcribe(pcm, rate))
