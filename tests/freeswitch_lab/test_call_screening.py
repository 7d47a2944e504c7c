"""Calls answered by a phone's call-screening assistant on the real lab FreeSWITCH
(``tests/e2e/test_call_screening_e2e.py`` on Asterisk), through REST, with the offline engines
(Piper speaks, Whisper listens): the screened party hears the screening message, then the
person behind the screener hears the first message, and the record's verdict is
``screening``; a declining screener ends the call ``screening-declined``. What the party heard
is its own recording (``<number>-<sip_call_id>.wav``), transcribed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from e2e.audio_helpers import (
    assert_heard,
    read_finished_recording,
    require_offline_speech,
    transcribe,
    wait_spoken,
    warm_offline_speech,
)
from e2e.test_audio_e2e import SHORT_GREETING
from fakes.calls import call_finished
from freeswitch_lab.lab_service import LabFreeswitchService, lab_settings, serve_on_lab
from pbx.freeswitch.live_service import TERMINAL
from voicedock_lab.freeswitch import LabFreeswitch
from voicedock_lab.freeswitch_config import SCREENED, SCREENER_DECLINES

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(120)]

PURPOSE = "your parcel delivery"
SCREENING_MESSAGE = "Hi, this is the city library calling about an overdue book."


@pytest.fixture
async def live(
    freeswitch_lab: LabFreeswitch, tmp_path: Path
) -> AsyncIterator[LabFreeswitchService]:
    require_offline_speech()
    await warm_offline_speech()
    settings = lab_settings(freeswitch_lab, tmp_path / "fslab.db", None)
    async with serve_on_lab(freeswitch_lab, settings) as (client, service, key):
        yield LabFreeswitchService(client, service, key, freeswitch_lab)


async def place(live: LabFreeswitchService, destination: str, **override: str) -> str:
    call_id = await live.place(
        destination,
        assistant_override={
            "first_message": SHORT_GREETING,
            "voicemail_detection": "detect",
            **override,
        },
        metadata={"purpose": PURPOSE},
    )
    await live.wait_status(call_id, ("in-progress",))
    return call_id


async def heard(live: LabFreeswitchService, number: str, sip_call_id: str) -> str:
    """What the party heard (its recording, finished once the call is over), transcribed."""
    path = live.lab.recordings_dir / f"{number}-{sip_call_id}.wav"
    pcm, rate = await read_finished_recording(path)
    return (await transcribe(pcm, rate)).lower()


async def test_a_screener_hears_who_calls_and_the_person_behind_it_the_greeting(
    live: LabFreeswitchService,
) -> None:
    call_id = await place(live, SCREENED)
    sip_call_id = await live.getvar(await live.channel_of(call_id), "sip_call_id")
    await wait_spoken(live, call_id, SHORT_GREETING, 60)  # the party heard it to its end
    status, body = await live.post(f"/calls/{call_id}/control", {"type": "end-call"})
    assert status == 200, body
    await live.wait_status(call_id, TERMINAL, within=15)
    await call_finished(live.service.runner, call_id)
    call = await live.call(call_id)
    verdict = call["answering_machine"]
    assert verdict["result"] == "screening", verdict
    assert verdict["evidence"]["screening_outcome"] == "answered", verdict
    spoken = [m["content"] for m in call["messages"] if m["role"] == "assistant"]
    assert spoken[1:2] == [SHORT_GREETING], spoken
    assert [m for m in call["messages"] if m["role"] == "user"] == []

    text = await heard(live, SCREENED, sip_call_id)
    # not the business's name: Whisper garbles brand names ("Acme Corp" → "acnecorp")
    assert_heard({"virtual", "assistant", "calling", "parcel", "delivery", "wait", "line"}, text)
    assert_heard({"city", "library"}, text)
    assert text.index("delivery") < text.index("library"), text


async def test_a_screener_that_declines_ends_the_call_screening_declined(
    live: LabFreeswitchService,
) -> None:
    call_id = await place(live, SCREENER_DECLINES, screening_message=SCREENING_MESSAGE)
    sip_call_id = await live.getvar(await live.channel_of(call_id), "sip_call_id")
    ended = await live.wait_status(call_id, TERMINAL, within=60)
    assert ended["end_reason"] == "screening-declined", ended
    await call_finished(live.service.runner, call_id)
    call = await live.call(call_id)
    assert call["answering_machine"]["result"] == "screening", call["answering_machine"]
    assert call["answering_machine"]["evidence"]["screening_outcome"] == "declined"
    spoken = [m["content"] for m in call["messages"] if m["role"] == "assistant"]
    assert spoken == [SCREENING_MESSAGE]

    assert_heard(
        {"city", "library", "overdue", "book"}, await heard(live, SCREENER_DECLINES, sip_call_id)
    )
