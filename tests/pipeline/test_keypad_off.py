"""A keypad plan turned off (``enabled`` False): the caller's keys are ignored on both engines.
No key cuts what the assistant is saying, no entry is collected (neither by its terminator nor
by its timeout), the model never receives ``Keypad: ...`` and the transcript has no entry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from fakes.local_server import LocalServer
from voicedock.domain.assistant_config import RealtimeConfig
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.realtime_dialogue import RealtimeDialogue, RealtimeParts
from voicedock.pipeline.dialogue.turn_engine import TurnEngine, TurnParts
from voicedock.pipeline.hearing.keypad import KeypadPlan
from voicedock.pipeline.providers.realtime import RealtimeSpeech

from .cloud.fake_realtime import RealtimeScript, realtime_handler
from .fakes import FakeLlm, FakeSink, FakeStt, FakeTts
from .test_turn_engine import config, speak, until

pytestmark = pytest.mark.unit

OFF = KeypadPlan(timeout_s=0.5, enabled=False)
KEY = "xai-test-secret"
LONG = "One two three four five six seven eight nine ten eleven twelve."


async def test_the_turn_engine_ignores_keys_when_the_keypad_is_off() -> None:
    stt, tts, sink = FakeStt(["Read me the menu."]), FakeTts(ms_per_char=20), FakeSink()
    llm = FakeLlm(["Press one for sales. Press two for support.", "Unused."])
    async with TurnEngine(
        TurnParts(stt=stt, llm=llm, tts=tts, sink=sink), config(keypad=OFF)
    ) as conv:
        speak(conv)
        await until(lambda: len(sink.handles) == 2)
        sink.advance(sink.handles[0].duration_ms / 2)  # half of the first sentence heard
        for key in "1234#":
            conv.feed_dtmf(key)
        await asyncio.sleep(0.8)  # past the plan's timeout too
        assert not any(h.flushed for h in sink.handles)  # no barge-in by key
        assert conv.assistant_audible
        sink.play_all()
        await until(lambda: len(conv.transcript) == 2)
        await asyncio.sleep(0.1)
    assert [(e.role, e.content, e.interrupted) for e in conv.transcript] == [
        ("user", "Read me the menu.", False),
        ("assistant", "Press one for sales. Press two for support.", False),
    ]
    assert len(llm.calls) == 1  # nothing more to answer
    assert not any("Keypad" in m.content for call in llm.calls for m in call)


@pytest.fixture
async def realtime_url() -> AsyncIterator[tuple[str, RealtimeScript]]:
    script = RealtimeScript(token=KEY)
    server = LocalServer()
    server.route("GET", "/v1/realtime", realtime_handler(script))
    async with server:
        yield server.url.replace("http://", "ws://") + "/v1/realtime", script


async def test_the_speech_to_speech_dialogue_ignores_keys_when_the_keypad_is_off(
    realtime_url: tuple[str, RealtimeScript],
) -> None:
    url, script = realtime_url
    speech, sink = RealtimeSpeech(RealtimeConfig(api_key=KEY, url=url)), FakeSink()
    try:
        async with RealtimeDialogue(
            RealtimeParts(speech=speech, tts=FakeTts(ms_per_char=20), sink=sink),
            ConversationConfig(keypad=OFF),
        ) as dialogue:
            await dialogue.say(LONG)
            await until(lambda: len(sink.handles) == 1)
            sink.advance(sink.handles[0].duration_ms / 2)  # half of it heard
            for key in "1234#":
                dialogue.feed_dtmf(key)
            await asyncio.sleep(0.8)  # past the plan's timeout too
            assert not sink.handles[0].flushed  # no barge-in by key
            sink.play_all()
            await until(lambda: len(dialogue.transcript) == 1)
            await asyncio.sleep(0.1)
    finally:
        await speech.aclose()
    assert [(e.role, e.content, e.interrupted) for e in dialogue.transcript] == [
        ("assistant", LONG, False)
    ]
    sent = [
        e for e in script.events if e["type"] in ("conversation.item.create", "response.create")
    ]
    assert not [e for e in sent if "Keypad" in str(e)]
    assert not [e for e in script.events if e["type"] == "response.cancel"]
