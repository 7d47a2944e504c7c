from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from fakes.local_server import LocalServer, Scripted
from voicedock.domain.assistant_config import SttConfig
from voicedock.pipeline.frames import Transcript
from voicedock.pipeline.providers._http import RateLimitedError
from voicedock.pipeline.providers.base import (
    ProviderConfigError,
    ProviderConnectionError,
    ProviderResponseError,
    ProviderTimeoutError,
    StreamingStt,
)
from voicedock.pipeline.providers.deepgram import DeepgramStt, parse_listen_message

from .fake_deepgram import DeepgramScript, deepgram_handler, results_message

pytestmark = pytest.mark.unit

KEY = "dg-test-secret"
AUDIO = b"\x00\x01" * 160


@pytest.fixture
def script() -> DeepgramScript:
    return DeepgramScript(token=KEY)


@pytest.fixture
async def server(script: DeepgramScript) -> AsyncIterator[LocalServer]:
    srv = LocalServer()
    srv.route("GET", "/v1/listen", deepgram_handler(script))
    srv.route("POST", "/v1/listen")
    async with srv:
        yield srv


def make_stt(
    server: LocalServer,
    key: str = KEY,
    *,
    language: str | None = None,
    read_s: float = 15.0,
    keepalive_s: float = 5.0,
) -> DeepgramStt:
    url = server.url + "/v1"
    config = SttConfig(api_key=key, base_url=url, language=language, read_timeout_s=read_s)
    return DeepgramStt(config, keepalive_s=keepalive_s)


async def collect(stream: AsyncIterator[Transcript]) -> list[Transcript]:
    return [t async for t in stream]


def test_parse_messages() -> None:
    assert parse_listen_message(results_message("hi", is_final=True)) == Transcript("hi")
    assert parse_listen_message(results_message("", is_final=True)) is None
    assert parse_listen_message('{"type": "UtteranceEnd", "last_word_end": 2.1}') is None
    with pytest.raises(ProviderResponseError):
        parse_listen_message('{"type": "Error", "description": "bad audio"}')


async def test_live_session(server: LocalServer, script: DeepgramScript) -> None:
    stt = make_stt(server)
    assert isinstance(stt, StreamingStt)
    try:
        async with stt.stream(8000) as stream:
            await stream.push_audio(AUDIO)
            await stream.push_audio(b"")  # ignored: would end the stream upstream
            await stream.push_audio(AUDIO)
            iterator = aiter(stream)
            assert await anext(iterator) == Transcript("book a", final=False)
            await stream.end_input()
            assert await collect(iterator) == [Transcript("Book a table.", final=True)]
    finally:
        await stt.aclose()
    assert script.headers["Authorization"] == f"Token {KEY}"
    assert script.query == {
        "model": "nova-3",
        "smart_format": "true",
        "encoding": "linear16",
        "sample_rate": "8000",
        "channels": "1",
        "interim_results": "true",
        "endpointing": "300",
    }
    assert script.audio_bytes == 2 * len(AUDIO)
    assert script.texts == [{"type": "CloseStream"}]


async def test_keepalive_while_silent(server: LocalServer, script: DeepgramScript) -> None:
    stt = make_stt(server, keepalive_s=0.1)
    try:
        async with stt.stream(16000):
            await asyncio.sleep(0.35)
    finally:
        await stt.aclose()
    assert {"type": "KeepAlive"} in script.texts


async def test_401_on_handshake(server: LocalServer) -> None:
    stt = make_stt(server, key="wrong")
    try:
        with pytest.raises(ProviderConfigError) as info:
            await stt.stream(8000).connect()
    finally:
        await stt.aclose()
    assert not info.value.retryable


async def test_429_on_handshake(server: LocalServer, script: DeepgramScript) -> None:
    script.reject_status = 429
    script.reject_headers = {"Retry-After": "3"}
    stt = make_stt(server)
    try:
        with pytest.raises(RateLimitedError) as info:
            await stt.stream(8000).connect()
    finally:
        await stt.aclose()
    assert info.value.retry_after_s == 3.0


async def test_500_on_handshake(server: LocalServer, script: DeepgramScript) -> None:
    script.reject_status = 503
    stt = make_stt(server)
    try:
        with pytest.raises(ProviderResponseError) as info:
            await stt.stream(8000).connect()
    finally:
        await stt.aclose()
    assert info.value.retryable


async def test_socket_dropped_midway(server: LocalServer, script: DeepgramScript) -> None:
    script.drop_after_audio = True
    stt = make_stt(server)
    try:
        async with stt.stream(8000) as stream:
            await stream.push_audio(AUDIO)
            with pytest.raises(ProviderConnectionError):
                await collect(aiter(stream))
    finally:
        await stt.aclose()


async def test_error_close_code(server: LocalServer, script: DeepgramScript) -> None:
    script.close_code_after_audio = 1011
    stt = make_stt(server)
    try:
        async with stt.stream(8000) as stream:
            await stream.push_audio(AUDIO)
            with pytest.raises(ProviderConnectionError, match="1011"):
                await collect(aiter(stream))
    finally:
        await stt.aclose()


async def test_no_final_result_times_out(server: LocalServer, script: DeepgramScript) -> None:
    script.ignore_close_stream = True
    stt = make_stt(server, read_s=0.2)
    try:
        async with stt.stream(8000) as stream:
            await stream.end_input()
            with pytest.raises(ProviderTimeoutError):
                await collect(aiter(stream))
    finally:
        await stt.aclose()


async def test_aclose_midway_closes_the_socket(server: LocalServer, script: DeepgramScript) -> None:
    stt = make_stt(server)
    try:
        stream = stt.stream(8000)
        await stream.connect()
        await stream.push_audio(AUDIO)
        await stream.aclose()
        await stream.aclose()
        await asyncio.wait_for(script.disconnected.wait(), 2.0)
        assert await collect(aiter(stream)) == []
        with pytest.raises(ProviderConnectionError):
            await stream.push_audio(AUDIO)
    finally:
        await stt.aclose()


async def test_cancelled_consumer_then_close(server: LocalServer, script: DeepgramScript) -> None:
    stt = make_stt(server)
    try:
        async with stt.stream(8000) as stream:
            task = asyncio.create_task(collect(aiter(stream)))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        await asyncio.wait_for(script.disconnected.wait(), 2.0)
    finally:
        await stt.aclose()


async def test_prerecorded_utterance(server: LocalServer) -> None:
    body = {
        "metadata": {"request_id": "r1", "duration": 0.5, "channels": 1},
        "results": {
            "channels": [{"alternatives": [{"transcript": "yes please", "confidence": 0.99}]}]
        },
    }
    server.replies.append(
        Scripted(chunks=[json.dumps(body).encode()], content_type="application/json")
    )
    stt = make_stt(server, language="en")
    try:
        assert await stt.transcribe(AUDIO, 8000) == "yes please"
    finally:
        await stt.aclose()
    (req,) = server.requests
    assert req.headers["Content-Type"] == "audio/wav"
    assert req.query == {"model": "nova-3", "language": "en", "smart_format": "true"}
    assert req.body.startswith(b"RIFF")


def test_the_documented_model_name_is_accepted() -> None:
    stt = DeepgramStt(SttConfig(model="nova-3-general", api_key="k"))
    assert "model=nova-3&" in stt.live_url(8000)
    assert stt.live_url(8000).startswith("wss://api.deepgram.com/v1/listen?")
