"""An OpenAI-compatible LLM on 127.0.0.1 (port 0) for tests that check what the LLM received.

    async with LlmStandIn(reply="We open at nine.") as llm:
        settings.speech.openai_base_url = llm.base_url        # or llm_config.base_url
        ...                                                    # place a call, talk
        request = await llm.wait_request()
        assert request.system_prompt == "You are ..."
        assert request.model == "gpt-4o-mini"
        assert "Monday" in request.last_user_text

``POST /v1/chat/completions`` answers ``"stream": true`` with the SSE stream the OpenAI API
sends (role chunk, one content chunk per word, finish chunk, ``data: [DONE]``) and anything
else with one ``chat.completion`` object. Every request is recorded whole (``ChatRequest``:
model, messages, tools, headers, the raw body, when it arrived) before it is answered.
``reply`` is a text, a ``ToolCalls`` (the model calls functions: streamed as
``delta.tool_calls`` fragments, the arguments' JSON in pieces, as the API sends them) or a
function of the request returning either; ``fail_next(status, message)`` answers the next
request with an OpenAI error body instead, ``fail_all(status)`` every request from then on;
``hang_after_words`` makes a streamed answer stop after that many words and send nothing more
(a model that hangs midway; 0: before its first word) until the client gives up or the
stand-in closes. A client that goes away before its answer is written (a plan closing a
request it no longer needs) is no error.

The wire helpers (``chat_chunk``, ``chat_stream_body``, ``completion_body``, ``error_body``)
are public for tests that script a raw reply on a ``LocalServer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fakes.local_server import Handler, LocalServer

COMPLETIONS_PATH = "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class ToolCalls:
    """A reply that calls functions: ``(name, arguments)`` pairs, after ``text`` if any."""

    calls: tuple[tuple[str, dict[str, Any]], ...]
    text: str = ""


Reply = str | ToolCalls | Callable[["ChatRequest"], "str | ToolCalls"]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One request the stand-in received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = 0.0  # when it arrived (the event loop's clock)

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages = self.body.get("messages")
        return messages if isinstance(messages, list) else []

    @property
    def tools(self) -> list[dict[str, Any]] | None:
        tools = self.body.get("tools")
        return tools if isinstance(tools, list) else None

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")

    @property
    def system_prompt(self) -> str | None:
        """The first message's content when it is a system message (the instructions)."""
        first = self.messages[0] if self.messages else None
        return str(first["content"]) if first and first.get("role") == "system" else None

    def texts(self, role: str) -> list[str]:
        """The contents of the messages with ``role``, in order."""
        return [str(m.get("content") or "") for m in self.messages if m.get("role") == role]

    @property
    def tool_names(self) -> list[str]:
        """The names of the functions offered (``tools[].function.name``)."""
        return [str(t.get("function", {}).get("name")) for t in self.tools or []]

    @property
    def last_user_text(self) -> str:
        said = self.texts("user")
        return said[-1] if said else ""


@dataclass(slots=True)
class _Failure:
    status: int
    message: str


@dataclass
class LlmStandIn:
    """The stand-in server; use as ``async with LlmStandIn(...) as llm``."""

    reply: Reply = "Okay."
    delay_s: float = 0.0  # a stalled LLM: each answer starts this late
    hang_after_words: int | None = None  # a stream that stops midway
    requests: list[ChatRequest] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _failing: _Failure | None = None
    _closing: asyncio.Event = field(default_factory=asyncio.Event)
    _server: LocalServer = field(default_factory=LocalServer)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def base_url(self) -> str:
        """What a client configures as its base URL (``.../v1``)."""
        return self._server.url + "/v1"

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Another endpoint of the same server (the provider's speech, say); before it starts."""
        self._server.route(method, path, handler)

    async def __aenter__(self) -> LlmStandIn:
        self._server.route("POST", COMPLETIONS_PATH, self._handle)
        await self._server.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()  # hanging answers end
        await self._server.__aexit__(*exc)

    def fail_next(self, status: int, message: str = "The server had an error") -> None:
        """Answer the next request with an OpenAI error body and ``status``."""
        self._failures.append(_Failure(status, message))

    def fail_all(self, status: int, message: str = "The server had an error") -> None:
        """Answer every request from now on with an OpenAI error body and ``status``."""
        self._failing = _Failure(status, message)

    async def wait_request(self, count: int = 1, timeout: float = 10.0) -> ChatRequest:
        """The ``count``-th request (1-based), waiting for it to arrive."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return self.requests[count - 1]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = asyncio.get_running_loop().time()
        recorded = await self._server.record(request)
        try:
            body = json.loads(recorded.body)
        except ValueError:
            return web.Response(status=400, body=error_body("body is not JSON"))
        chat = ChatRequest(
            recorded.path, recorded.headers, body if isinstance(body, dict) else {}, arrived
        )
        async with self._arrived:
            self.requests.append(chat)
            self._arrived.notify_all()
        if self._failures or self._failing:
            failure = self._failures.pop(0) if self._failures else self._failing
            assert failure is not None
            return web.Response(
                status=failure.status,
                body=error_body(failure.message),
                content_type="application/json",
            )
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        reply = self.reply(chat) if callable(self.reply) else self.reply
        text = reply.text if isinstance(reply, ToolCalls) else reply
        if not chat.stream:
            return web.Response(
                body=completion_body(text, chat.model), content_type="application/json"
            )
        response = web.StreamResponse(headers={"Cache-Control": "no-cache"})
        response.content_type = "text/event-stream"
        # The client may go away first (a plan closing a request it no longer needs).
        with contextlib.suppress(ConnectionResetError):
            await self._stream(request, response, chat, reply)
        return response

    async def _stream(
        self,
        request: web.Request,
        response: web.StreamResponse,
        chat: ChatRequest,
        reply: str | ToolCalls,
    ) -> None:
        await response.prepare(request)
        text = reply.text if isinstance(reply, ToolCalls) else reply
        pieces = re.findall(r"\S+\s*", text)
        if self.hang_after_words is not None:
            said = pieces[: self.hang_after_words]
            await response.write(
                chat_chunk("", role=True, model=chat.model)
                + b"".join(chat_chunk(piece, model=chat.model) for piece in said)
            )
            await self._closing.wait()
            return
        if isinstance(reply, ToolCalls):
            await response.write(tool_calls_stream_body(pieces, reply.calls, chat.model))
        else:
            await response.write(chat_stream_body(pieces, chat.model))
        await response.write_eof()


def chat_chunk(
    content: str | None,
    *,
    role: bool = False,
    finish: str | None = None,
    model: str = "gpt-4o-mini",
) -> bytes:
    """One ``chat.completion.chunk`` SSE event."""
    delta: dict[str, str] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    doc = {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1694268190,
        "model": model,
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


def chat_stream_body(pieces: list[str], model: str = "gpt-4o-mini") -> bytes:
    """A whole streamed reply: role chunk, ``pieces``, finish chunk, ``data: [DONE]``."""
    body = chat_chunk("", role=True, model=model)
    for piece in pieces:
        body += chat_chunk(piece, model=model)
    body += chat_chunk(None, finish="stop", model=model)
    return body + b"data: [DONE]\n\n"


def tool_calls_stream_body(
    pieces: list[str],
    calls: tuple[tuple[str, dict[str, Any]], ...],
    model: str = "gpt-4o-mini",
) -> bytes:
    """Text ``pieces``, then each call as the API streams it: a fragment with its id, name
    and empty arguments, then the arguments' JSON in two pieces; ``finish_reason``
    ``tool_calls``."""
    body = chat_chunk("", role=True, model=model)
    for piece in pieces:
        body += chat_chunk(piece, model=model)
    for index, (name, arguments) in enumerate(calls):
        encoded = json.dumps(arguments)
        half = len(encoded) // 2
        first = {"id": f"call_{index}_{name}", "type": "function"}
        body += _tool_chunk({"index": index, **first, "function": {"name": name, "arguments": ""}})
        for part in (encoded[:half], encoded[half:]):
            body += _tool_chunk({"index": index, "function": {"arguments": part}})
    finish = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}
    body += _event({"object": "chat.completion.chunk", "model": model, "choices": [finish]})
    return body + b"data: [DONE]\n\n"


def _tool_chunk(fragment: dict[str, Any]) -> bytes:
    choice = {"index": 0, "delta": {"tool_calls": [fragment]}, "finish_reason": None}
    return _event({"object": "chat.completion.chunk", "choices": [choice]})


def _event(doc: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps({"id": "chatcmpl-123", **doc}).encode() + b"\n\n"


def completion_body(text: str, model: str = "gpt-4o-mini") -> bytes:
    """A non-streamed ``chat.completion``."""
    doc = {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1694268190,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
    }
    return json.dumps(doc).encode()


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}
    ).encode()
