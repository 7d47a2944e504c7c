"""Call recordings and voicemail on the real lab Asterisk, driven through REST.

* A recorded call to the utterance party: ``GET /calls/{id}/recording`` (with the call's
  organization's key; refused to another organization and without a key; ranges answered 206)
  holds the party's known utterance on the left channel and voicedock's greeting on the right
  (each channel transcribed by Whisper).
* The voicemail party (a recorded greeting, then Record()'s beep): detected as a machine, the
  voicemail message is left after the beep (the party's own recording, transcribed, holds it),
  the call ends ``voicemail`` and the verdict is on the call record and in its events.
* The person party ("Hello?" then silence): detected as human; the first message follows and
  the party hears it.
* A transfer ends the recording where the caller leaves (the announcement is in it).
* A campaign retries a contact whose calls reach voicemail (its `voicemail` retry rule).
* The silent party is asked "are you still there?" after the silence prompt's seconds, and
  hears it before the silence timeout's goodbye.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from e2e.audio_helpers import (
    SILENT_PARTY,
    UTTERANCE_PARTY,
    assert_heard,
    read_new_recording,
    require_offline_speech,
    transcribe,
    wait_transcript,
    warm_offline_speech,
    words,
)
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import SHORT_GREETING, control, place_call, wait_recorded, when
from e2e.test_calls_e2e import TERMINAL, get_call, wait_status
from fakes.calls import call_finished
from fakes.world import GLOBEX, SUPPORT_ID
from voicedock.api.api_keys import issue_api_key
from voicedock.pipeline.hearing.endpointing import SILENCE_TIMEOUT
from voicedock_lab.heard import listen
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

VOICEMAIL_PARTY = "+31612345690"
PERSON_PARTY = "+31612345691"
VOICEMAIL_MESSAGE = "This is the city library. Your reserved book is ready for pickup."


@pytest.fixture(autouse=True)
async def _offline_speech() -> None:
    require_offline_speech()
    await warm_offline_speech()


@pytest.fixture
async def live(lab: LabAsterisk, tmp_path: Path) -> AsyncIterator[LiveService]:
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    settings.recordings.directory = str(tmp_path / "recordings")
    settings.policy.internal_targets = ["sales"]
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


def channel_pcm(data: np.ndarray, channel: int) -> bytes:
    return np.ascontiguousarray(data[:, channel]).astype("<i2").tobytes()


async def test_a_recorded_call_holds_each_side_on_its_channel_and_downloads_with_its_key(
    live: LiveService,
) -> None:
    body = {
        "destination": UTTERANCE_PARTY,
        "assistant_id": SUPPORT_ID,
        "first_message": SHORT_GREETING,
        "record": True,  # this call only: the assistant does not record
    }
    resp = await live.client.post("/calls/outbound", json=body, headers=live.auth())
    assert resp.status == 200, await resp.text()
    call_id = str((await resp.json())["call_id"])
    await wait_transcript(live, call_id, lambda m: "appointment" in words(m["content"]), 25)
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=15)
    assert ended["recording_url"] == f"/calls/{call_id}/recording"
    duration = ended["recording_duration_seconds"]
    assert 4.0 < duration < 30.0

    resp = await live.client.get(ended["recording_url"], headers=live.auth())
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "audio/wav"
    body = await resp.read()
    data, rate = soundfile.read(io.BytesIO(body), dtype="int16")
    assert rate == 8000
    assert data.shape[1] == 2
    assert data.shape[0] / rate == pytest.approx(duration, abs=0.1)
    caller = await transcribe(channel_pcm(data, 0), rate)
    assert {"appointment", "monday"} <= words(caller), caller
    assistant = await transcribe(channel_pcm(data, 1), rate)
    assert {"city", "library"} <= words(assistant), assistant
    assert "library" not in words(caller)  # the channels are apart
    # One timeline: the greeting (right) plays before the party speaks (left, after 3 s).
    left, right = (listen(data[:, channel], rate) for channel in (0, 1))
    assert right.onset_s is not None
    assert left.onset_s is not None
    assert right.onset_s < 2.0 < left.onset_s

    ranged = await live.client.get(
        ended["recording_url"], headers={**live.auth(), "Range": "bytes=0-43"}
    )
    assert ranged.status == 206
    assert await ranged.read() == body[:44]

    other_key, _ = await issue_api_key(live.service.store, GLOBEX)
    across = await live.client.get(
        ended["recording_url"], headers={"Authorization": f"Bearer {other_key}"}
    )
    assert across.status == 404
    assert (await live.client.get(ended["recording_url"])).status == 401


async def test_a_transfer_ends_the_recording_where_the_caller_leaves(
    live: LiveService,
) -> None:
    # The silent party: nothing barges in on the greeting.
    call_id = await place_call(live, SILENT_PARTY, SHORT_GREETING, record=True)
    await wait_transcript(live, call_id, lambda m: m["content"] == SHORT_GREETING, 20)
    announcement = "I am transferring you to our sales team now."
    body = {"type": "transfer", "destination": "sales", "announcement": announcement}
    await control(live, call_id, body)
    ended = await wait_status(live, call_id, TERMINAL, within=30)
    assert ended["end_reason"] == "transferred"
    await asyncio.sleep(3)  # the caller talks with sales: none of it is ours to record
    await live.pbx.ari.hangup_channel(call_id)
    await asyncio.wait_for(call_finished(live.service.runner, call_id), 15)
    call = await get_call(live, call_id)
    with_us = when(call["transferred_at"]) - when(call["started_at"])
    assert 0 < call["recording_duration_seconds"] <= with_us.total_seconds() + 0.5

    resp = await live.client.get(call["recording_url"], headers=live.auth())
    data, rate = soundfile.read(io.BytesIO(await resp.read()), dtype="int16")
    assistant = words(await transcribe(channel_pcm(data, 1), rate))
    assert {"transferring", "sales"} <= assistant, assistant


async def test_voicemail_is_detected_and_the_message_is_left_after_the_beep(
    live: LiveService, lab: LabAsterisk
) -> None:
    before = set(lab.recordings_dir.glob("voicemail-*-record.wav"))
    call_id = await place_call(
        live,
        VOICEMAIL_PARTY,
        SHORT_GREETING,
        voicemail_detection="detect-and-leave-message",
        voicemail_message=VOICEMAIL_MESSAGE,
    )
    ended = await wait_recorded(live, call_id, within=45)
    assert ended["status"] == "ended"
    assert ended["end_reason"] == "voicemail"
    verdict = ended["answering_machine"]
    assert verdict["result"] == "machine", verdict
    assert verdict["evidence"]["decided_at_ms"] < 5000
    assert verdict["evidence"]["message_at_ms"] > verdict["evidence"]["decided_at_ms"]
    events = [e["data"] for e in ended["events"] if e["type"] == "answering-machine"]
    assert [e["result"] for e in events] == ["machine"]
    spoken = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    assert spoken == [VOICEMAIL_MESSAGE]  # the first message is not said to a machine

    # What the answering machine recorded after its beep: the whole message.
    pcm, rate = await read_new_recording(lab.recordings_dir, "voicemail-*-record.wav", before)
    heard = await transcribe(pcm, rate)
    assert_heard({"library", "reserved", "book", "ready", "pickup"}, heard)


async def test_a_person_saying_hello_is_human_and_hears_the_first_message(
    live: LiveService, lab: LabAsterisk
) -> None:
    before = set(lab.recordings_dir.glob("hello-*-rx.wav"))
    call_id = await place_call(
        live, PERSON_PARTY, SHORT_GREETING, voicemail_detection="detect-and-leave-message"
    )
    greeting = await wait_transcript(live, call_id, lambda m: m["role"] == "assistant", 20)
    assert greeting["content"] == SHORT_GREETING
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=15)
    assert ended["answering_machine"]["result"] == "human"
    assert ended["answering_machine"]["evidence"]["reason"] == "short-greeting"
    assert ended["end_reason"] != "voicemail"

    pcm, rate = await read_new_recording(lab.recordings_dir, "hello-*-rx.wav", before)
    heard = words(await transcribe(pcm, rate))
    assert {"city", "library"} <= heard, heard


async def test_a_silent_callee_is_asked_whether_they_are_still_there_before_the_end(
    live: LiveService, lab: LabAsterisk
) -> None:
    before = set(lab.recordings_dir.glob("silent-*-rx.wav"))
    call_id = await place_call(
        live,
        SILENT_PARTY,
        SHORT_GREETING,
        silence_prompt_seconds=2,
        silence_prompt_message="Hello, are you still there?",
        silence_timeout_seconds=5,
    )
    ended = await wait_recorded(live, call_id, within=30)
    assert ended["end_reason"] == SILENCE_TIMEOUT
    spoken = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    assert spoken[:2] == [SHORT_GREETING, "Hello, are you still there?"], spoken
    assert len(spoken) == 3  # then the silence timeout's goodbye

    pcm, rate = await read_new_recording(lab.recordings_dir, "silent-*-rx.wav", before)
    heard = (await transcribe(pcm, rate)).lower()
    assert "still there" in heard, heard
    assert heard.index("library") < heard.index("still there") < heard.index("no longer")


async def test_a_campaign_retries_a_contact_whose_calls_reach_voicemail(
    live: LiveService,
) -> None:
    """Campaigns count ``voicemail`` as an outcome of their retry rules."""
    status, created = await live.post(
        "/campaigns",
        {
            "name": "Voicemail retries",
            "assistant": {"first_message": "Hello.", "voicemail_detection": "detect"},
            "contacts": [{"destination": VOICEMAIL_PARTY}],
            "retries": {"voicemail": {"max_attempts": 2, "backoff_seconds": 1}},
        },
    )
    assert status == 201, created
    cid = created["id"]
    async with asyncio.timeout(60):
        while (body := (await live.get(f"/campaigns/{cid}"))[1])["status"] != "finished":
            await asyncio.sleep(0.5)
    assert body["progress"]["by_outcome"] == {"voicemail": 1}
    _, listed = await live.get(f"/campaigns/{cid}/contacts")
    assert [c["attempts"] for c in listed["contacts"]] == [2]
    _, calls = await live.get("/calls")
    ended = [await live.call(c["id"]) for c in calls["calls"]]
    assert [c["end_reason"] for c in ended] == ["voicemail", "voicemail"]
    assert {c["answering_machine"]["result"] for c in ended} == {"machine"}
