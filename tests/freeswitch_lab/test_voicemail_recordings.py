"""Answering-machine detection, voicemail drop and recordings on the real lab FreeSWITCH:
the same media-stream path as on Asterisk (mod_audio_stream here), driven through REST.

The voicemail party plays a recorded greeting and a 1000 Hz beep, then records; the person
party says "Hello?" and waits. The assistant speaks through ``ToneTts`` (a 440 Hz tone per
sentence), so what the party recorded and what voicedock recorded are measured, not
transcribed.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from e2e.audio_helpers import read_finished_recording
from fakes.calls import call_finished
from freeswitch_lab.lab_service import LabService, ToneTts, lab_settings, serve_on_lab
from pbx.freeswitch.live_service import TERMINAL, speech_fakes, until
from voicedock_lab.freeswitch import LabFreeswitch
from voicedock_lab.freeswitch_config import PERSON, VOICEMAIL
from voicedock_lab.heard import listen

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(90)]

MESSAGE = "Please call the library back."  # 29 characters: 1.16 s of tone


@pytest.fixture
async def live(freeswitch_lab: LabFreeswitch, tmp_path: Path) -> AsyncIterator[LabService]:
    async with speech_fakes() as (name, fakes):
        settings = lab_settings(freeswitch_lab, tmp_path / "fslab.db", name)
        settings.recordings.directory = str(tmp_path / "recordings")
        async with serve_on_lab(freeswitch_lab, settings) as (client, service, key):
            running = LabService(client, service, key, freeswitch_lab, fakes)
            running.speech.tts = ToneTts(8000, ms_per_char=40)
            yield running


async def test_a_machine_gets_the_message_after_its_beep_and_the_call_is_recorded(
    live: LabService,
) -> None:
    override = {
        "voicemail_detection": "detect-and-leave-message",
        "voicemail_message": MESSAGE,
        "record": True,
    }
    call_id = await live.place(VOICEMAIL, assistant_override=override)
    await live.wait_status(call_id, ("in-progress",))
    sip_call_id = await live.getvar(await live.channel_of(call_id), "sip_call_id")
    ended = await live.wait_status(call_id, TERMINAL, within=40)
    assert ended["end_reason"] == "voicemail", ended
    await call_finished(live.service.runner, call_id)
    call = await live.call(call_id)
    verdict = call["answering_machine"]
    assert verdict["result"] == "machine", verdict
    assert verdict["evidence"]["beep_hz"] == pytest.approx(1000, abs=50), verdict
    assert live.speech.tts.texts == [MESSAGE]  # no first message to a machine

    # The machine recorded the whole message after its beep.
    record = live.lab.recordings_dir / f"voicemail-{sip_call_id}-record.wav"
    pcm, rate = await read_finished_recording(record)
    samples = np.frombuffer(pcm, dtype="<i2")
    heard = listen(samples, rate, threshold=500.0)
    assert heard.loud_s >= 1.0, heard

    # voicedock's recording: the greeting and beep on the left, the message after them on
    # the right, on one timeline.
    resp = await live.client.get(call["recording_url"], headers=live.auth())
    assert resp.status == 200
    data, rate = soundfile.read(io.BytesIO(await resp.read()), dtype="int16")
    left = listen(np.ascontiguousarray(data[:, 0]), rate, threshold=500.0)
    right = listen(np.ascontiguousarray(data[:, 1]), rate, threshold=500.0)
    assert left.onset_s is not None
    assert right.onset_s is not None
    message_at_s = verdict["evidence"]["message_at_ms"] / 1000
    assert left.onset_s < 1.0 < message_at_s - 0.2 < right.onset_s < message_at_s + 0.5
    assert right.loud_s == pytest.approx(1.16, abs=0.15)


async def test_a_person_is_human_and_gets_the_first_message(live: LabService) -> None:
    call_id = await live.place(PERSON, assistant_override={"voicemail_detection": "detect"})
    await until(lambda: bool(live.speech.tts.texts), within=10)
    status, body = await live.post(f"/calls/{call_id}/control", {"type": "end-call"})
    assert status == 200, body
    await live.wait_status(call_id, TERMINAL, within=15)
    await call_finished(live.service.runner, call_id)
    call = await live.call(call_id)
    assert call["answering_machine"]["result"] == "human", call["answering_machine"]
    assert call["end_reason"] != "voicemail"
    assert call["recording_url"] is None  # not asked for
