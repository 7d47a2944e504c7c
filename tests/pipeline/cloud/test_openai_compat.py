from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from fakes.local_server import LocalServer, Scripted
from voicedock.domain.assistant_config import LlmConfig
from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.providers._http import RateLimitedError, Timeouts
from voicedock.pipeline.providers.base import (
    ProviderConfigError,
    ProviderConnectionError,
    ProviderResponseError,
    ProviderTimeoutError,
)
from voicedock.pipeline.providers.openai_compat import OpenAiCompatLlm

from .fake_openai import (
    chat_chunk,
    chat_stream_body,
    error_reply,
    sse_reply,
)

pytestmark = pytest.mark.unit

KEY = "sk-test-secret-key"
MESSAGES = [ChatMessage("system", "Be brief."), ChatMessage("user", "Hello?")]


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    srv = LocalServer()
    srv.route("POST", "/v1/chat/completions")
    async with srv:
        yield srv


def make_llm(server: LocalServer, **kwargs: object) -> OpenAiCompatLlm:
    return OpenAiCompatLlm(
        model="gpt-4o-mini",
        base_url=server.url + "/v1",
        api_key=KEY,
        options={"temperature": 0.3},
        **kwargs,  # type: ignore[arg-type]
    )


async def collect(llm: OpenAiCompatLlm) -> list[str]:
    return [piece async for piece in llm.stream(MESSAGES)]


async def test_request_and_streamed_reply(server: LocalServer) -> None:
    server.replies.append(sse_reply(chat_stream_body(["Hel", "lo", " there."])))
    llm = make_llm(server)
    try:
        assert await collect(llm) == ["Hel", "lo", " there."]
    finally:
        await llm.aclose()
    (req,) = server.requests
    assert req.path == "/v1/chat/completions"
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert json.loads(req.body) == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello?"},
        ],
        "stream": True,
        "temperature": 0.3,
    }


@pytest.mark.parametrize("split", [1, 7, 50])
async def test_split_chunks_keepalives_and_crlf(server: LocalServer, split: int) -> None:
    body = b": keep-alive\r\n\r\n" + chat_stream_body(["Ünï", "code"]).replace(b"\n", b"\r\n")
    server.replies.append(sse_reply(body, split=split))
    llm = make_llm(server)
    try:
        assert "".join(await collect(llm)) == "Ünïcode"
    finally:
        await llm.aclose()


async def test_no_key_sends_no_authorization(server: LocalServer) -> None:
    server.replies.append(sse_reply(chat_stream_body(["ok"])))
    llm = OpenAiCompatLlm(model="llama3", base_url=server.url + "/v1")
    try:
        assert await collect(llm) == ["ok"]
    finally:
        await llm.aclose()
    assert "Authorization" not in server.requests[0].headers


async def test_401_is_config_error_without_the_key(server: LocalServer) -> None:
    server.replies.append(error_reply(401, "Incorrect API key provided"))
    llm = make_llm(server)
    try:
        with pytest.raises(ProviderConfigError) as info:
            await collect(llm)
    finally:
        await llm.aclose()
    assert not info.value.retryable
    assert "Incorrect API key" in str(info.value)
    assert KEY not in str(info.value)


async def test_429_carries_retry_after(server: LocalServer) -> None:
    server.replies.append(error_reply(429, "Rate limit reached", {"Retry-After": "7"}))
    llm = make_llm(server)
    try:
        with pytest.raises(RateLimitedError) as info:
            await collect(llm)
    finally:
        await llm.aclose()
    assert info.value.retryable
    assert info.value.retry_after_s == 7.0


async def test_500_is_retryable(server: LocalServer) -> None:
    server.replies.append(error_reply(500, "The server had an error"))
    llm = make_llm(server)
    try:
        with pytest.raises(ProviderResponseError) as info:
            await collect(llm)
    finally:
        await llm.aclose()
    assert info.value.retryable


async def test_error_event_inside_stream(server: LocalServer) -> None:
    body = chat_chunk("Hi", role=True) + b'data: {"error": {"message": "overloaded"}}\n\n'
    server.replies.append(sse_reply(body))
    llm = make_llm(server)
    try:
        with pytest.raises(ProviderResponseError, match="overloaded"):
            await collect(llm)
    finally:
        await llm.aclose()


async def test_read_timeout(server: LocalServer) -> None:
    server.replies.append(sse_reply(chat_stream_body(["late"]), hang_s=1.0))
    llm = make_llm(server, timeouts=Timeouts(connect_s=1.0, read_s=0.2))
    try:
        with pytest.raises(ProviderTimeoutError) as info:
            await collect(llm)
    finally:
        await llm.aclose()
    assert info.value.retryable


async def test_broken_stream_midway(server: LocalServer) -> None:
    body = chat_chunk("", role=True) + chat_chunk("Half")
    server.replies.append(sse_reply(body, cut=True))
    llm = make_llm(server)
    got: list[str] = []

    async def consume() -> None:
        async for piece in llm.stream(MESSAGES):
            got.append(piece)

    try:
        with pytest.raises(ProviderConnectionError) as info:
            await consume()
    finally:
        await llm.aclose()
    assert got == ["Half"]
    assert info.value.retryable


async def test_stream_without_done_is_broken(server: LocalServer) -> None:
    server.replies.append(sse_reply(chat_chunk("Half", role=True)))
    llm = make_llm(server)
    try:
        with pytest.raises(ProviderConnectionError, match="DONE"):
            await collect(llm)
    finally:
        await llm.aclose()


async def test_closing_the_stream_midway_aborts_the_request(server: LocalServer) -> None:
    server.replies.append(Scripted(chunks=[chat_chunk("tick")], endless=True))
    llm = make_llm(server)
    try:
        stream = llm.stream(MESSAGES)
        assert await anext(stream) == "tick"
        await stream.aclose()  # type: ignore[attr-defined]
        await asyncio.wait_for(server.client_gone.wait(), 2.0)
    finally:
        await llm.aclose()


async def test_cancelling_the_consumer_aborts_the_request(server: LocalServer) -> None:
    server.replies.append(Scripted(chunks=[chat_chunk("tick")], endless=True))
    llm = make_llm(server)

    async def consume() -> None:
        async for _ in llm.stream(MESSAGES):
            pass

    try:
        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.client_gone.wait(), 2.0)
    finally:
        await llm.aclose()


async def test_aclose_is_idempotent_and_final(server: LocalServer) -> None:
    llm = make_llm(server)
    await llm.aclose()
    await llm.aclose()
    with pytest.raises(ProviderConnectionError):
        await collect(llm)


def test_from_config_defaults_per_provider() -> None:
    llm = OpenAiCompatLlm.from_config(LlmConfig(provider="mistral", model="mistral-small-latest"))
    assert llm._url == "https://api.mistral.ai/v1/chat/completions"
    with pytest.raises(ProviderConfigError):
        OpenAiCompatLlm.from_config(LlmConfig(provider="openai"))
