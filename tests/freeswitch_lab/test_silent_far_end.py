"""A far end that sends nothing while its party says nothing, through REST on the real lab
FreeSWITCH: the lab's parties run with ``send_silence_when_idle`` 0, so no RTP comes between
their words (the FreeSWITCH twin of ``transmit_silence = no``; ``e2e/test_silent_far_end_e2e``
is the Asterisk one). The gap is silence on the wall clock.

* The utterance party's turn reaches the LLM (the OpenAI-compatible stand-in) within the
  endpointing delay + 300 ms of its last word: when its sound ended (the channel variable
  ``lab_said_at`` the party sets right after ``playback``) less the silence that ends the sound
  file. On this lab and on a second one whose parties send silence between their words.
* The silent party is hung up after ``silence_timeout_seconds`` on the clock, counted from the
  end of the greeting to the moment the goodbye is asked of the voice.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from e2e.test_audio_e2e import wait_recorded
from e2e.test_silent_far_end_e2e import (
    BUDGET_S,
    GREETING,
    HEARD,
    REPLY,
    at,
    sound_tail_s,
    wall,
)
from fakes.llm_standin import LlmStandIn
from freeswitch_lab.lab_service import LabService, running_lab_service
from freeswitch_lab_session import running_lab
from pbx.freeswitch.live_service import until
from pipeline.fakes import FakeTts
from voicedock.pipeline.dialogue.turn_engine import ConversationConfig
from voicedock.pipeline.hearing.endpointing import SILENCE_TIMEOUT
from voicedock_lab.freeswitch import LabFreeswitch
from voicedock_lab.freeswitch_config import SILENT, UTTERANCE, FreeswitchLabSettings
from voicedock_lab.utterances import APPOINTMENT

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def freeswitch_lab_transmitting() -> Iterator[LabFreeswitch]:
    """A lab FreeSWITCH whose parties send silence between their words."""
    name = f"pytest-fs-silence-{os.getpid()}"
    yield from running_lab(FreeswitchLabSettings(instance=name, transmit_silence=True))


@pytest.fixture(params=["silent between words", "silence between words"])
async def live(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LabService]:
    """The service on the session's lab (its parties send nothing between words), then on
    the transmitting one."""
    quiet = request.param == "silent between words"
    lab = request.getfixturevalue("freeswitch_lab" if quiet else "freeswitch_lab_transmitting")
    assert isinstance(lab, LabFreeswitch)
    assert lab.settings.transmit_silence is not quiet
    async with running_lab_service(lab, tmp_path) as running:
        yield running


class TimedTts(FakeTts):
    """``FakeTts`` that notes when (the event loop's clock) it was asked for each sentence."""

    def __init__(self) -> None:
        super().__init__(8000, ms_per_char=5)
        self.asked: list[float] = []

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        self.asked.append(asyncio.get_running_loop().time())
        async for chunk in super().synthesize(text):
            yield chunk


async def test_a_party_that_falls_silent_is_answered_within_the_endpointing_delay(
    live: LabService,
) -> None:
    live.speech.stt.texts = [HEARD]
    async with LlmStandIn(reply=REPLY) as llm:
        assistant = {
            "first_message": GREETING,
            "llm_config": {
                "provider": "openai-compatible",
                "base_url": llm.base_url,
                "api_key": "sk-lab",
                "model": "lab-model",
            },
        }
        before = await live.channels()
        status, reply = await live.post(
            "/calls/outbound", {"destination": UTTERANCE, "assistant": assistant}
        )
        assert status == 200, reply
        call_id = str(reply["call_id"])
        channel = await live.channel_of(call_id, within=10)
        asked = await llm.wait_request(timeout=30)
        asked_at = wall(asked.at)
        (party,) = (await live.channels()) - before - {channel}
        said: list[str] = []

        async def noted() -> bool:
            said[:] = [await live.getvar(party, "lab_said_at")]
            return said[0].isdigit()

        await until(noted, 5)
        status, _ = await live.post(f"/calls/{call_id}/control", {"type": "end-call"})
        assert status == 200
        ended = await wait_recorded(live, call_id, within=20)
    sound = live.lab.sounds_dir / f"{APPOINTMENT.name}.wav"
    last_word = int(said[0]) / 1e6 - sound_tail_s(sound)
    (latency, *_) = ended["latency"]
    delay = latency["endpointing_ms"] / 1000
    waited = asked_at - last_word
    print(f"transmit_silence={live.lab.settings.transmit_silence}: asked {waited:.3f} s after")
    assert asked.last_user_text == HEARD
    assert 0.3 <= delay <= 1.0, latency  # the silence the engine waited, in its audio
    assert delay - 0.1 < waited <= delay + BUDGET_S, (waited, delay)
    assert REPLY in [m["content"] for m in ended["messages"] if m["role"] == "assistant"]


async def test_a_party_that_never_sends_is_hung_up_after_the_silence_timeout(
    live: LabService,
) -> None:
    voice = live.speech.tts = TimedTts()
    goodbye = ConversationConfig().silence_timeout_message
    assert goodbye is not None
    assistant = {"first_message": GREETING, "silence_timeout_seconds": 5}
    call_id = await live.place(SILENT, assistant_override=assistant)
    ended = await wait_recorded(live, call_id, within=30)
    assert (ended["status"], ended["end_reason"]) == ("ended", SILENCE_TIMEOUT)
    said = [e["data"] for e in ended["events"] if e["type"] == "transcript"]
    assert [m["content"] for m in said] == [GREETING, goodbye]
    # Spoken a sentence at a time: the goodbye's first is asked for as the call times out.
    timed_out = wall(voice.asked[voice.texts.index(goodbye.split(". ")[0] + ".")])
    silent = timed_out - at(said[0]["ended_at"])
    print(f"transmit_silence={live.lab.settings.transmit_silence}: timed out after {silent:.3f}")
    assert 5.0 - 0.1 <= silent <= 5.0 + BUDGET_S, silent
