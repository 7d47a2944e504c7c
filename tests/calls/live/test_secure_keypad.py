"""A live call in secure mode (``calls/live/secure_keypad.py``) over the in-process
chan_websocket endpoint: the caller's keys go to the entry alone (no keypad turn, nothing for
the model or the transcript), the recording holds silence where the caller's audio was, and
once the entry is over the keypad is the dialogue's again."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import soundfile

from calls.live.test_conversation import Call, until
from calls.live.test_conversation import call as call  # the fixture
from pipeline.synth import voiced
from voicedock.calls.live.conversation import (
    LiveConversation,
    LiveOptions,
    LiveParts,
    SpeechProviders,
)
from voicedock.calls.live.secure_keypad import SecureKeypad
from voicedock.domain.assistant_config import config_of
from voicedock.media.codecs import ulaw_encode
from voicedock.media.recording import CallRecorder
from voicedock.pipeline.dialogue.turn_engine import ConversationConfig
from voicedock.pipeline.hearing.secure_digits import SecureDigitsPlan

pytestmark = pytest.mark.unit

PROMPT = "Please key in your card number."
CARD = "4929386172530418"


def secure_live(call: Call, secure: SecureKeypad, recorder: CallRecorder) -> LiveConversation:
    return LiveConversation(
        call.media,
        config_of({}),
        LiveOptions(config=ConversationConfig()),
        LiveParts(
            providers=SpeechProviders(call.stt, call.llm, call.tts),
            recorder=recorder,
            secure_keypad=secure,
        ),
    )


async def test_keys_of_a_secure_entry_reach_neither_the_model_nor_the_recording(
    call: Call, tmp_path: Path
) -> None:
    call.llm.replies = ["Noted."]
    secure = SecureKeypad()
    recorder = CallRecorder(tmp_path / "call.wav", 8000)
    ws = call.fake.channel().ws
    tone = ulaw_encode(voiced(100))  # 100 ms of the caller's audio with each key (in-band)
    async with secure_live(call, secure, recorder) as live:
        entry = asyncio.ensure_future(secure.collect(SecureDigitsPlan(max_digits=19)))
        await until(lambda: secure.active)
        await live.say(PROMPT)  # as the dialogue says the tool's prompt, in secure mode
        await until(lambda: len(live.transcript) == 1)
        for key in CARD + "#":
            for start in range(0, len(tone), 160):
                await ws.send_bytes(tone[start : start + 160])
            await ws.send_str(f"DTMF_END digit:{key}")
        digits = await asyncio.wait_for(entry, 5.0)
        assert (digits.digits, digits.ended_by, digits.complete) == (CARD, "terminator", True)
        assert not secure.active
        await ws.send_str("DTMF_END digit:#")  # until the tool releases it: nobody's key
        await asyncio.sleep(0.1)
        assert secure.secure
        secure.release()
        assert secure.muted()  # the tail: frames still in flight
        await until(lambda: not secure.muted())
        for key in "52#":  # after the entry the keypad is the dialogue's again
            await ws.send_str(f"DTMF_END digit:{key}")
        await until(lambda: len(live.transcript) == 3)
    said = [(e.role, e.content) for e in live.transcript]
    assert said == [("assistant", PROMPT), ("user", "Keypad: 52#"), ("assistant", "Noted.")]
    sent = [m.content for calls in call.llm.calls for m in calls]
    assert not any(CARD[:4] in str(content) for content in sent)
    samples, _rate = soundfile.read(tmp_path / "call.wav", dtype="int16")
    assert len(samples) >= 17 * 800  # the caller's 1.7 s of audio took its place in time
    assert not np.any(samples[:, 0]), "the caller's audio of the entry was recorded"
    # The assistant's side holds "Noted." (FakeTts: 10 ms a character, a frame's rounding),
    # not the prompt played in secure mode.
    assert 8 * 10 * len("Noted.") <= np.count_nonzero(samples[:, 1]) < 8 * 10 * len(PROMPT)


async def test_an_entry_times_out_empty_and_ends_with_the_call(call: Call, tmp_path: Path) -> None:
    secure = SecureKeypad()
    recorder = CallRecorder(tmp_path / "call.wav", 8000)
    async with secure_live(call, secure, recorder):
        plan = SecureDigitsPlan(timeout_s=0.2)
        timed_out = await asyncio.wait_for(secure.collect(plan), 3.0)
        assert (timed_out.digits, timed_out.ended_by, timed_out.complete) == ("", "timeout", False)
        assert (await secure.collect(plan)).ended_by == "closed"  # not released yet
        secure.release()
        waiting = asyncio.ensure_future(secure.collect(SecureDigitsPlan(timeout_s=30)))
        await until(lambda: secure.active)
    ended = await asyncio.wait_for(waiting, 3.0)  # the call closed: the entry ended with it
    assert (ended.ended_by, ended.complete) == ("closed", False)
    assert (await secure.collect(SecureDigitsPlan())).ended_by == "closed"
