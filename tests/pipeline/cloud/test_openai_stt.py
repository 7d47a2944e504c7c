from __future__ import annotations

import io
import json
import wave
from collections.abc import AsyncIterator

import pytest

from fakes.local_server import LocalServer, Scripted
from voicedock.domain.assistant_config import SttConfig
from voicedock.pipeline.providers._http import RateLimitedError
from voicedock.pipeline.providers.base import (
    ProviderConfigError,
    ProviderConnectionError,
    ProviderResponseError,
    ProviderTimeoutError,
)
from voicedock.pipeline.providers.openai_audio import OpenAiStt

from .fake_openai import error_reply

pytestmark = pytest.mark.unit

KEY = "sk-test-secret"
PCM = b"\x01\x00\xff\xff" * 800


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    srv = LocalServer()
    srv.route("POST", "/v1/audio/transcriptions")
    async with srv:
        yield srv


async def run(server: LocalServer, read_s: float = 15.0) -> str:
    config = SttConfig(
        api_key=KEY, language="en", base_url=server.url + "/v1", read_timeout_s=read_s
    )
    stt = OpenAiStt(config)
    try:
        return await stt.transcribe(PCM, 8000)
    finally:
        await stt.aclose()
        await stt.aclose()


def json_reply(doc: object, **kwargs: object) -> Scripted:
    return Scripted(chunks=[json.dumps(doc).encode()], content_type="application/json", **kwargs)  # type: ignore[arg-type]


async def test_multipart_request_and_text(server: LocalServer) -> None:
    server.replies.append(json_reply({"text": " I'd like to book a table. "}))
    assert await run(server) == "I'd like to book a table."
    (req,) = server.requests
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert req.form["model"] == "gpt-4o-mini-transcribe"
    assert req.form["language"] == "en"
    assert req.form["response_format"] == "json"
    upload = req.form["file"]
    assert upload["filename"] == "audio.wav"
    assert upload["content_type"] == "audio/wav"
    with wave.open(io.BytesIO(upload["data"])) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        assert wav.readframes(wav.getnframes()) == PCM


async def test_401(server: LocalServer) -> None:
    server.replies.append(error_reply(401, "Incorrect API key provided"))
    with pytest.raises(ProviderConfigError):
        await run(server)


async def test_429(server: LocalServer) -> None:
    server.replies.append(
        error_reply(429, "slow down", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    )
    with pytest.raises(RateLimitedError) as info:
        await run(server)
    assert info.value.retry_after_s == 0.0  # a date in the past: retry now


async def test_500(server: LocalServer) -> None:
    server.replies.append(error_reply(500, "oops"))
    with pytest.raises(ProviderResponseError) as info:
        await run(server)
    assert info.value.retryable


async def test_garbage_body(server: LocalServer) -> None:
    server.replies.append(json_reply({"nope": 1}))
    with pytest.raises(ProviderResponseError) as info:
        await run(server)
    assert not info.value.retryable


async def test_timeout(server: LocalServer) -> None:
    server.replies.append(json_reply({"text": "late"}, hang_s=1.0))
    with pytest.raises(ProviderTimeoutError):
        await run(server, read_s=0.2)


async def test_broken_body(server: LocalServer) -> None:
    server.replies.append(Scripted(chunks=[b'{"text": "hal'], cut=True))
    with pytest.raises(ProviderConnectionError):
        await run(server)


def test_missing_key_is_config_error() -> None:
    with pytest.raises(ProviderConfigError):
        OpenAiStt(SttConfig(provider="openai"))
