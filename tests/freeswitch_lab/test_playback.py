"""Barge-in on the real FreeSWITCH, heard by the party: ``flush`` stops what the channel plays.

The assistant's files are queued on the channel with ``sendmsg`` playback (docs/freeswitch.md,
"Playback path"); barge-in is ``uuid_break <uuid> all``, which must stop the file playing and
drop the queued ones, and the play events of files still on their way must not play later.
Checked on the recording of the lab party that records what it hears.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from contract.backends import Recorder
from e2e.audio_helpers import read_new_recording
from voicedock.config import FreeswitchSettings
from voicedock.domain.ids import new_outbound_call_id
from voicedock.pbx.base import OriginateRequest, PbxEventKind
from voicedock.pbx.freeswitch.pbx import FreeswitchPbx
from voicedock_lab.freeswitch import LabFreeswitch
from voicedock_lab.freeswitch_config import ANSWERS
from voicedock_lab.heard import listen

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(60)]

RATE = 8000


def tone(seconds: float) -> bytes:
    t = np.arange(int(RATE * seconds)) / RATE
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


@pytest.fixture
async def pbx(freeswitch_lab: LabFreeswitch) -> AsyncIterator[tuple[FreeswitchPbx, Recorder]]:
    settings = FreeswitchSettings(
        esl_port=freeswitch_lab.esl_port, esl_password=freeswitch_lab.esl_password, media_port=0
    )
    events = Recorder()
    async with FreeswitchPbx(settings) as adapter:
        await adapter.start(events)
        yield adapter, events


async def test_barge_in_stops_what_the_party_hears_and_the_next_words_follow(
    pbx: tuple[FreeswitchPbx, Recorder], freeswitch_lab: LabFreeswitch
) -> None:
    adapter, events = pbx
    call_id = new_outbound_call_id()
    lab = freeswitch_lab
    before = set(lab.recordings_dir.glob(f"{ANSWERS}-*.wav"))
    await adapter.originate(
        OriginateRequest(call_id, ANSWERS, lab.settings.service_dids[0], lab.settings.trunk_name)
    )
    await events.wait(call_id, PbxEventKind.ANSWERED, within=15)
    async with adapter.call_media(call_id, media_format="slin") as media:
        long = media.play(tone(5.0))  # 2.4 s of it is queued in FreeSWITCH at the flush
        await asyncio.sleep(1.2)
        cut = await media.flush()
        assert cut is not None
        assert not (await long.played()).completed
        await asyncio.sleep(1.0)  # a queued or stale file would play now
        answer = media.play(tone(0.6))
        assert (await asyncio.wait_for(answer.played(), 5)).completed
        await media.hangup()
    await events.wait(call_id, PbxEventKind.HANGUP)
    pcm, rate = await read_new_recording(lab.recordings_dir, f"{ANSWERS}-*.wav", before)
    heard = listen(np.frombuffer(pcm, dtype="<i2"), rate)
    # The party heard the cut tone as far as the flush said, then silence, then the answer.
    assert heard.loud_s == pytest.approx(cut.heard_ms / 1000 + 0.6, abs=0.15), (cut, heard)
    assert max(heard.holes_ms) >= 900, heard  # the second between the flush and the answer
