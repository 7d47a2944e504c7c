"""Answers without end: each provider reads at most its cap, then fails that request with a
``ProviderResponseError`` (never hangs, never fills the memory); the server sees the client
go away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from fakes.local_server import LocalServer, Scripted
from voicedock.domain.assistant_config import RealtimeConfig, SttConfig, TtsConfig
from voicedock.egress import Egress, EgressPolicy, NetworkTarget, ResponseCaps
from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.providers.base import ProviderResponseError
from voicedock.pipeline.providers.deepgram import DeepgramStt
from voicedock.pipeline.providers.elevenlabs import ElevenLabsTts
from voicedock.pipeline.providers.openai_audio import OpenAiStt, OpenAiTts
from voicedock.pipeline.providers.openai_compat import OpenAiCompatLlm
from voicedock.pipeline.providers.realtime import RealtimeSpeech

pytestmark = pytest.mark.unit

CAPS = ResponseCaps(
    llm_reply_bytes=64_000,
    tts_audio_bytes=128_000,
    stt_result_bytes=32_000,
    websocket_message_bytes=16_000,
)
LOCAL = Egress(EgressPolicy(allowed=(NetworkTarget.parse("127.0.0.1/32"),)), caps=CAPS)
WITHIN = 10  # seconds: an uncapped read of an endless answer never ends


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    local = LocalServer()
    local.route("*", "/{tail:.*}")
    async with local:
        yield local


def endless(chunk: bytes, content_type: str = "application/octet-stream") -> Scripted:
    return Scripted(chunks=[chunk], content_type=content_type, endless=True)


async def test_an_endless_llm_reply_fails_the_turn_at_the_cap(server: LocalServer) -> None:
    server.replies.append(endless(b": keep-alive " + b"x" * 4000 + b"\n", "text/event-stream"))
    llm = OpenAiCompatLlm(model="m", base_url=server.url + "/v1", egress=LOCAL)
    try:
        async with asyncio.timeout(WITHIN):
            with pytest.raises(ProviderResponseError, match="over the cap of 64000 bytes"):
                async for _ in llm.stream([ChatMessage("user", "hi")]):
                    pass
    finally:
        await llm.aclose()


async def test_an_endless_llm_text_is_capped_too(server: LocalServer) -> None:
    chunk = b'data: {"choices":[{"delta":{"content":"la "}}]}\n\n'
    server.replies.append(endless(chunk * 50, "text/event-stream"))
    llm = OpenAiCompatLlm(model="m", base_url=server.url + "/v1", egress=LOCAL)
    received = 0
    try:
        async with asyncio.timeout(WITHIN):
            with pytest.raises(ProviderResponseError, match="over the cap"):  # noqa: PT012
                async for text in llm.stream([ChatMessage("user", "hi")]):
                    received += len(text)
    finally:
        await llm.aclose()
    assert 0 < received < CAPS.llm_reply_bytes


@pytest.mark.parametrize("engine", ["openai", "elevenlabs"])
async def test_endless_tts_audio_fails_at_the_cap(server: LocalServer, engine: str) -> None:
    server.replies.append(endless(b"\1\0" * 4000))
    tts: OpenAiTts | ElevenLabsTts
    if engine == "openai":
        tts = OpenAiTts(TtsConfig(api_key="k", base_url=server.url), egress=LOCAL)
    else:
        tts = ElevenLabsTts(TtsConfig(api_key="k", voice_id="v", base_url=server.url), egress=LOCAL)
    played = 0
    try:
        async with asyncio.timeout(WITHIN):
            with pytest.raises(ProviderResponseError, match="audio is over the cap"):  # noqa: PT012
                async for pcm in tts.synthesize("Hello."):
                    played += len(pcm)
    finally:
        await tts.aclose()
    assert played <= CAPS.tts_audio_bytes


@pytest.mark.parametrize("engine", ["openai", "deepgram"])
async def test_an_endless_transcription_fails_at_the_cap(server: LocalServer, engine: str) -> None:
    server.replies.append(endless(b'{"text": "' + b"a" * 4000, "application/json"))
    stt: OpenAiStt | DeepgramStt
    if engine == "openai":
        stt = OpenAiStt(SttConfig(api_key="k", base_url=server.url), egress=LOCAL)
    else:
        stt = DeepgramStt(SttConfig(api_key="k", base_url=server.url + "/v1"), egress=LOCAL)
    try:
        async with asyncio.timeout(WITHIN):
            with pytest.raises(ProviderResponseError, match="transcription is over the cap"):
                await stt.transcribe(b"\0\0" * 1600, 16000)
    finally:
        await stt.aclose()


async def test_an_endless_error_body_is_read_only_in_part(server: LocalServer) -> None:
    server.replies.append(Scripted(status=500, chunks=[b"e" * 4000], endless=True))
    llm = OpenAiCompatLlm(model="m", base_url=server.url + "/v1", egress=LOCAL)
    try:
        async with asyncio.timeout(WITHIN):
            with pytest.raises(ProviderResponseError, match="HTTP 500"):
                async for _ in llm.stream([ChatMessage("user", "hi")]):
                    pass
    finally:
        await llm.aclose()


def big_message_socket(size: int) -> Callable[[web.Request], Awaitable[web.WebSocketResponse]]:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str('{"type": "' + "x" * size + '"}')
        async for _ in ws:
            pass
        return ws

    return handler


async def test_an_oversized_realtime_message_fails_the_session() -> None:
    server = LocalServer()
    server.route("GET", "/v1/realtime", big_message_socket(CAPS.websocket_message_bytes * 4))
    async with server:
        url = server.url.replace("http://", "ws://") + "/v1/realtime"
        speech = RealtimeSpeech(RealtimeConfig(api_key="k", url=url), egress=LOCAL)
        try:
            async with asyncio.timeout(WITHIN), speech.connect() as conversation:
                with pytest.raises(ProviderResponseError, match="message is over the cap"):
                    async for _ in conversation:
                        pass
        finally:
            await speech.aclose()


async def test_an_oversized_deepgram_message_fails_the_stream() -> None:
    server = LocalServer()
    server.route("GET", "/v1/listen", big_message_socket(CAPS.websocket_message_bytes * 4))
    async with server:
        stt = DeepgramStt(SttConfig(api_key="k", base_url=server.url + "/v1"), egress=LOCAL)
        try:
            async with asyncio.timeout(WITHIN), stt.stream(16000) as stream:
                with pytest.raises(ProviderResponseError, match="message is over the cap"):
                    async for _ in stream:
                        pass
        finally:
            await stt.aclose()
