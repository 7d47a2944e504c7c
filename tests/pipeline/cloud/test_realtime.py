from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import pytest

from fakes.local_server import LocalServer
from voicedock.domain.assistant_config import RealtimeConfig
from voicedock.pipeline.providers._http import RateLimitedError
from voicedock.pipeline.providers.base import (
    ProviderConfigError,
    ProviderConnectionError,
    ProviderResponseError,
)
from voicedock.pipeline.providers.realtime import (
    RealtimeAudio,
    RealtimeConversation,
    RealtimeError,
    RealtimeEvent,
    RealtimeResponseDone,
    RealtimeSpeech,
    RealtimeSpeechStarted,
    RealtimeSpeechStopped,
    RealtimeTranscript,
    parse_server_event,
)

from .fake_realtime import REPLY_PCM, RealtimeScript, realtime_handler

pytestmark = pytest.mark.unit

KEY = "xai-test-secret"


@pytest.fixture
def script() -> RealtimeScript:
    return RealtimeScript(token=KEY)


@pytest.fixture
async def server(script: RealtimeScript) -> AsyncIterator[LocalServer]:
    srv = LocalServer()
    srv.route("GET", "/v1/realtime", realtime_handler(script))
    async with srv:
        yield srv


def make(server: LocalServer, key: str = KEY) -> RealtimeSpeech:
    url = server.url.replace("http://", "ws://") + "/v1/realtime"
    return RealtimeSpeech(
        RealtimeConfig(
            api_key=key, url=url, model="grok-voice", voice="Ara", instructions="Be kind."
        )
    )


async def until_done(conv: RealtimeConversation) -> list[RealtimeEvent]:
    events: list[RealtimeEvent] = []
    async for event in conv:
        events.append(event)
        if isinstance(event, RealtimeResponseDone):
            break
    return events


def test_parse_events() -> None:
    assert parse_server_event('{"type": "response.audio.delta", "delta": "AAE="}')[1] == (
        RealtimeAudio(b"\x00\x01")
    )
    assert parse_server_event('{"type": "rate_limits.updated"}') == ("rate_limits.updated", None)
    with pytest.raises(ProviderResponseError):
        parse_server_event('{"type": "response.output_audio.delta", "delta": "**"}')
    stopped = '{"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 1200}'
    assert parse_server_event(stopped)[1] == RealtimeSpeechStopped(1200)
    no_end = '{"type": "input_audio_buffer.speech_stopped"}'
    assert parse_server_event(no_end)[1] == RealtimeSpeechStopped(None)


async def test_session_audio_and_say(server: LocalServer, script: RealtimeScript) -> None:
    speech = make(server)
    try:
        async with speech.connect() as conv:
            await conv.push_audio(b"\x01\x00" * 80)
            await conv.say("Your code is 4 7 1.")
            events = await until_done(conv)
    finally:
        await speech.aclose()
    assert script.query == {"model": "grok-voice"}
    update, append, item, create = script.events[:4]
    assert update == {
        "type": "session.update",
        "session": {
            "instructions": "Be kind.",
            "voice": "Ara",
            "turn_detection": {"type": "server_vad"},
            "audio": {
                "input": {"format": {"type": "audio/pcm", "rate": 24000}},
                "output": {"format": {"type": "audio/pcm", "rate": 24000}},
            },
        },
    }
    assert append == {
        "type": "input_audio_buffer.append",
        "audio": base64.b64encode(b"\x01\x00" * 80).decode(),
    }
    assert item["type"] == "conversation.item.create"
    assert item["item"]["role"] == "system"
    assert "Your code is 4 7 1." in item["item"]["content"][0]["text"]
    assert create["type"] == "response.create"
    instructions = create["response"]["instructions"]
    assert "verbatim" in instructions
    assert instructions.endswith(": Your code is 4 7 1.")
    assert RealtimeSpeechStarted() in events
    audio = b"".join(e.pcm for e in events if isinstance(e, RealtimeAudio))
    assert audio == REPLY_PCM
    assert RealtimeTranscript("assistant", "Hi", final=False) in events
    assert events[-1] == RealtimeResponseDone("completed")


async def test_say_cancels_a_response_in_flight(
    server: LocalServer, script: RealtimeScript
) -> None:
    speech = make(server)
    try:
        async with speech.connect() as conv:
            await conv.inject_context("The caller is a VIP.", respond=True)
            await conv.say("One moment please.")
            await until_done(conv)
    finally:
        await speech.aclose()
    kinds = [e["type"] for e in script.events]
    assert kinds[1:] == [
        "conversation.item.create",
        "response.create",
        "response.cancel",
        "conversation.item.create",
        "response.create",
    ]


async def test_error_event_keeps_the_session(server: LocalServer, script: RealtimeScript) -> None:
    speech = make(server)
    try:
        async with speech.connect() as conv:
            await conv._send({"type": "bogus"})
            event = await anext(aiter(conv))
            assert event == RealtimeError("unknown_event", "Unknown event", "invalid_request_error")
            await conv.inject_context("note")
    finally:
        await speech.aclose()


async def test_401(server: LocalServer) -> None:
    speech = make(server, key="wrong")
    try:
        with pytest.raises(ProviderConfigError):
            await speech.connect().connect()
    finally:
        await speech.aclose()


async def test_429(server: LocalServer, script: RealtimeScript) -> None:
    script.reject_status = 429
    speech = make(server)
    try:
        with pytest.raises(RateLimitedError) as info:
            await speech.connect().connect()
    finally:
        await speech.aclose()
    assert info.value.retry_after_s == 4.0


async def test_500(server: LocalServer, script: RealtimeScript) -> None:
    script.reject_status = 500
    speech = make(server)
    try:
        with pytest.raises(ProviderResponseError) as info:
            await speech.connect().connect()
    finally:
        await speech.aclose()
    assert info.value.retryable


async def test_dropped_socket(server: LocalServer, script: RealtimeScript) -> None:
    script.drop_after_session_update = True
    speech = make(server)
    try:
        async with speech.connect() as conv:
            with pytest.raises(ProviderConnectionError):
                async for _ in conv:
                    pass
    finally:
        await speech.aclose()


async def test_aclose_closes_the_socket(server: LocalServer, script: RealtimeScript) -> None:
    speech = make(server)
    try:
        conv = speech.connect()
        await conv.connect()
        await conv.aclose()
        await conv.aclose()
        await asyncio.wait_for(script.disconnected.wait(), 2.0)
        with pytest.raises(ProviderConnectionError):
            await conv.push_audio(b"\x00\x00")
    finally:
        await speech.aclose()


async def test_cancelled_consumer(server: LocalServer, script: RealtimeScript) -> None:
    speech = make(server)
    try:
        async with speech.connect() as conv:
            task = asyncio.create_task(until_done(conv))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        await asyncio.wait_for(script.disconnected.wait(), 2.0)
    finally:
        await speech.aclose()


def test_missing_key() -> None:
    with pytest.raises(ProviderConfigError):
        RealtimeSpeech(RealtimeConfig(provider="xai_realtime"))
