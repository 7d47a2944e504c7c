"""Call audio on the real lab Asterisk: what the far party says reaches voicedock's pipeline
through the 8 kHz call path, and what voicedock says reaches the far party.

The lab's speaking parties (dialplan/lab/) play utterances synthesised at lab set-up and
record what they hear as ``<party>-<tag>-rx.wav``.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from e2e.audio_helpers import (
    UTTERANCE_PARTY,
    new_recording,
    read_recording,
    require_offline_speech,
    speak_ulaw,
    speech_seconds,
    transcribe,
    ulaw_to_pcm,
    words,
)
from pbx.lab_calls import request, running_pbx
from voicedock.lab.server import LabAsterisk
from voicedock.media.session import MediaSession
from voicedock.pbx.base import PbxEventKind

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

GREETING = "Hello, this is the dental clinic. How can I help you?"


@pytest.fixture(autouse=True)
def _offline_speech() -> None:
    require_offline_speech()


async def test_media_session_hears_the_party_and_the_party_hears_us(lab: LabAsterisk) -> None:
    """No call runner: AsteriskPbx.open_media + MediaSession on an answered call."""
    before = set(lab.recordings_dir.glob("utterance-*-rx.wav"))
    greeting = await speak_ulaw(GREETING)
    heard = bytearray()
    async with running_pbx(lab) as (pbx, recorder):
        call = request(UTTERANCE_PARTY)
        await pbx.originate(call)
        await recorder.wait(call.call_id, PbxEventKind.ANSWERED)
        leg = await pbx.open_media(call.call_id)
        async with MediaSession.connect(leg.url) as media:
            frames = media.inbound_audio()
            # The first frame from the party means both legs are bridged: audio played before
            # that would never reach the party.
            heard += await asyncio.wait_for(anext(frames), 5)
            played = media.play(greeting, mark="greeting")
            # The party waits 3 s after answering, then speaks for about 2.3 s.
            listen_until = time.monotonic() + 6.5
            async with asyncio.timeout(15):
                async for frame in frames:
                    heard += frame
                    if time.monotonic() >= listen_until:
                        break
            result = await asyncio.wait_for(played.played(), 10)
            assert result.completed
        await pbx.hangup(call.call_id)
        await recorder.wait(call.call_id, PbxEventKind.HANGUP)

    caller_pcm = ulaw_to_pcm(bytes(heard))
    assert speech_seconds(caller_pcm) > 1.0
    said = words(await transcribe(caller_pcm))
    assert {"appointment", "monday"} <= said, said

    recording = await new_recording(lab.recordings_dir, "utterance-*-rx.wav", before)
    pcm, rate = read_recording(recording)
    assert rate == 8000
    assert speech_seconds(pcm, rate) > 1.0
    text = await transcribe(pcm, rate)
    assert {"dental", "clinic"} <= words(text), text
