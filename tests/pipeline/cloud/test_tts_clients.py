"""OpenAI speech and ElevenLabs streaming synthesis against loopback servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from fakes.local_server import LocalServer, Scripted
from voicedock.domain.assistant_config import TtsConfig
from voicedock.pipeline.providers._http import RateLimitedError
from voicedock.pipeline.providers.base import (
    ProviderConfigError,
    ProviderConnectionError,
    ProviderResponseError,
    ProviderTimeoutError,
    Tts,
)
from voicedock.pipeline.providers.elevenlabs import ElevenLabsTts
from voicedock.pipeline.providers.openai_audio import OpenAiTts

from .fake_openai import error_reply, split_every

pytestmark = pytest.mark.unit

KEY = "test-secret-key"
PCM = bytes(range(256)) * 8  # 2048 bytes, 1024 samples


@dataclass
class Case:
    name: str
    path: str
    build: Callable[[str, float], Tts]  # the server's URL, the read timeout (seconds)


def _openai(url: str, read_s: float) -> Tts:
    return OpenAiTts(
        TtsConfig(api_key=KEY, voice="coral", base_url=url + "/v1", read_timeout_s=read_s)
    )


def _eleven(url: str, read_s: float) -> Tts:
    voice = "JBFqnCBsd6RMkjVDRZzb"
    return ElevenLabsTts(
        TtsConfig(api_key=KEY, voice_id=voice, base_url=url, read_timeout_s=read_s)
    )


CASES = [
    Case("openai", "/v1/audio/speech", _openai),
    Case("elevenlabs", "/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb/stream", _eleven),
]


@pytest.fixture(params=CASES, ids=lambda c: c.name)
def case(request: pytest.FixtureRequest) -> Case:
    value: Case = request.param
    return value


@pytest.fixture
async def server(case: Case) -> AsyncIterator[LocalServer]:
    srv = LocalServer()
    srv.route("POST", case.path)
    async with srv:
        yield srv


async def run(tts: Tts, text: str = "Hello there.") -> list[bytes]:
    try:
        return [chunk async for chunk in tts.synthesize(text)]
    finally:
        await tts.aclose()


async def test_request_shape(case: Case, server: LocalServer) -> None:
    server.replies.append(Scripted(chunks=[PCM]))
    tts = case.build(server.url, 15.0)
    assert b"".join(await run(tts)) == PCM
    (req,) = server.requests
    body = json.loads(req.body)
    if case.name == "openai":
        assert tts.sample_rate == 24000
        assert req.headers["Authorization"] == f"Bearer {KEY}"
        assert body == {
            "model": "gpt-4o-mini-tts",
            "input": "Hello there.",
            "voice": "coral",
            "response_format": "pcm",
        }
    else:
        assert tts.sample_rate == 16000
        assert req.headers["xi-api-key"] == KEY
        assert "Authorization" not in req.headers
        assert req.query == {"output_format": "pcm_16000"}
        assert body == {"text": "Hello there.", "model_id": "eleven_flash_v2_5"}


@pytest.mark.parametrize("split", [1, 3, 333])
async def test_odd_splits_yield_whole_samples(case: Case, server: LocalServer, split: int) -> None:
    server.replies.append(Scripted(chunks=split_every(PCM, split)))
    chunks = await run(case.build(server.url, 15.0))
    assert all(len(c) % 2 == 0 and c for c in chunks)
    assert b"".join(chunks) == PCM


async def test_an_answer_that_came_at_once_is_handed_on_in_few_pieces(
    case: Case, server: LocalServer
) -> None:
    """Two seconds of voice written at once reach the dialogue in a few pieces (each piece
    costs it a conversion and a queueing), not one per 4 KiB."""
    two_seconds = PCM * (2 * 24000 * 2 // len(PCM))  # 96,000 bytes
    server.replies.append(Scripted(chunks=[two_seconds]))
    chunks = await run(case.build(server.url, 15.0))
    assert b"".join(chunks) == two_seconds
    assert len(chunks) <= 6


async def test_the_first_piece_is_handed_on_as_it_arrives(case: Case, server: LocalServer) -> None:
    """A piece smaller than the reads is not held back until more comes."""
    first, rest = PCM[:1000], PCM[1000:]
    server.replies.append(Scripted(chunks=[first, rest], gap_s=2.0))
    tts = case.build(server.url, 15.0)
    try:
        stream = tts.synthesize("Hello there.")
        async with asyncio.timeout(1.0):
            assert await anext(stream) == first
        assert b"".join([chunk async for chunk in stream]) == rest
    finally:
        await tts.aclose()


async def test_empty_text_makes_no_request(case: Case, server: LocalServer) -> None:
    assert await run(case.build(server.url, 15.0), "  ") == []
    assert server.requests == []


async def test_401(case: Case, server: LocalServer) -> None:
    server.replies.append(error_reply(401, "invalid_api_key"))
    with pytest.raises(ProviderConfigError) as info:
        await run(case.build(server.url, 15.0))
    assert not info.value.retryable
    assert KEY not in str(info.value)


async def test_429_with_retry_after(case: Case, server: LocalServer) -> None:
    server.replies.append(error_reply(429, "too_many_concurrent_requests", {"Retry-After": "2"}))
    with pytest.raises(RateLimitedError) as info:
        await run(case.build(server.url, 15.0))
    assert info.value.retry_after_s == 2.0
    assert info.value.retryable


async def test_500(case: Case, server: LocalServer) -> None:
    server.replies.append(error_reply(503, "busy"))
    with pytest.raises(ProviderResponseError) as info:
        await run(case.build(server.url, 15.0))
    assert info.value.retryable


async def test_timeout(case: Case, server: LocalServer) -> None:
    server.replies.append(Scripted(chunks=[PCM], hang_s=1.0))
    with pytest.raises(ProviderTimeoutError):
        await run(case.build(server.url, 0.2))


async def test_broken_stream(case: Case, server: LocalServer) -> None:
    server.replies.append(Scripted(chunks=[PCM], cut=True))
    with pytest.raises(ProviderConnectionError) as info:
        await run(case.build(server.url, 15.0))
    assert info.value.retryable


async def test_closing_midway_aborts_the_request(case: Case, server: LocalServer) -> None:
    server.replies.append(Scripted(chunks=[PCM], endless=True))
    tts = case.build(server.url, 15.0)
    try:
        stream = tts.synthesize("A long story.")
        assert await anext(stream)
        await stream.aclose()  # type: ignore[attr-defined]
        await asyncio.wait_for(server.client_gone.wait(), 2.0)
    finally:
        await tts.aclose()
        await tts.aclose()


def test_elevenlabs_rejects_unsupported_rate() -> None:
    with pytest.raises(ProviderConfigError):
        ElevenLabsTts(TtsConfig(api_key=KEY, voice_id="v", sample_rate=11025))
    with pytest.raises(ProviderConfigError):
        ElevenLabsTts(TtsConfig(voice_id="v"))
