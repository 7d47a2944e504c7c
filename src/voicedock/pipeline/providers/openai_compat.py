"""Chat completions over the OpenAI-compatible HTTP API, streamed as Server-Sent Events.

One client serves every server that speaks `POST {base_url}/chat/completions` with
`"stream": true`: OpenAI, Mistral, xAI, and local Ollama, vLLM or llama.cpp servers (which
need no key). Each SSE event carries a `chat.completion.chunk` whose
`choices[0].delta.content` is the next piece of text; `data: [DONE]` ends the reply.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Literal

import aiohttp
import msgspec

from voicedock.config import OLLAMA_BASE_URL
from voicedock.domain.assistant_config import LlmConfig
from voicedock.domain.json import JsonValue
from voicedock.egress import Egress
from voicedock.pipeline.frames import ChatMessage, Role, ToolCall
from voicedock.pipeline.providers._http import (
    OwnedSession,
    SseDecoder,
    Timeouts,
    abort_response,
    endpoint,
    raise_for_status,
    too_large,
    translate_errors,
)
from voicedock.pipeline.providers.base import (
    ProviderConfigError,
    ProviderConnectionError,
    ProviderResponseError,
)
from voicedock.pipeline.tools import ToolSpec

DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "mistral": "https://api.mistral.ai/v1",
    "xai": "https://api.x.ai/v1",
    "ollama": OLLAMA_BASE_URL,
}


class _Function(msgspec.Struct):
    name: str
    arguments: str


class _WireToolCall(msgspec.Struct, kw_only=True):
    id: str
    type: Literal["function"] = "function"
    function: _Function


class WireMessage(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One context message as the API takes it (tool calls and tool results included); a
    field not sent is left out."""

    role: Role
    content: str | None
    tool_calls: tuple[_WireToolCall, ...] = ()
    tool_call_id: str | msgspec.UnsetType = msgspec.UNSET


def chat_request_body(
    model: str,
    messages: Sequence[ChatMessage],
    options: Mapping[str, object],
    tools: Sequence[ToolSpec] = (),
) -> dict[str, object]:
    """The request: the model, the context and ``stream``, the tools offered, then the
    assistant's options (``temperature``…) as they were given."""
    body: dict[str, object] = {
        "model": model,
        "messages": [wire_message(m) for m in messages],
        "stream": True,
    }
    if tools:
        body["tools"] = [tool.openai_tool() for tool in tools]
    body.update(options)
    return body


def wire_message(message: ChatMessage) -> WireMessage:
    """One context message as the API takes it (tool calls and tool results included)."""
    calls = tuple(
        _WireToolCall(id=call.id, function=_Function(call.name, call.arguments))
        for call in message.tool_calls
    )
    return WireMessage(
        role=message.role,
        content=(message.content or None) if calls else message.content,
        tool_calls=calls,
        tool_call_id=message.tool_call_id if message.role == "tool" else msgspec.UNSET,
    )


class _FragmentFunction(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class ToolCallFragment(msgspec.Struct):
    """A piece of a streamed tool call: the id and name come first, the arguments' JSON text
    in pieces, all under the call's ``index``."""

    index: int | None = None
    id: str | None = None
    function: _FragmentFunction | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    tool_calls: list[ToolCallFragment] | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None


class _Chunk(msgspec.Struct):
    """A ``chat.completion.chunk`` (or the ``error`` a server streams instead)."""

    choices: list[_Choice] | None = None
    error: object = None  # servers differ: an object with a message, or a text


_decode_chunk = msgspec.json.Decoder(_Chunk).decode


class ToolCallAssembler:
    """Collects the ``delta.tool_calls`` fragments of a streamed reply (by ``index``: the id
    and name come first, the arguments' JSON text in pieces) into whole ``ToolCall``s."""

    def __init__(self) -> None:
        self._parts: dict[int, dict[str, str]] = {}

    def feed(self, fragments: Sequence[ToolCallFragment]) -> None:
        for fragment in fragments:
            part = self._parts.setdefault(fragment.index or 0, {})
            if fragment.id:
                part["id"] = fragment.id
            function = fragment.function
            if function is not None:
                if function.name:
                    part["name"] = part.get("name", "") + function.name
                if function.arguments is not None:
                    part["arguments"] = part.get("arguments", "") + function.arguments

    def calls(self) -> list[ToolCall]:
        """The complete calls, in the model's order (a fragment without a name is dropped)."""
        done = [
            ToolCall(part.get("id") or f"call_{index}", part["name"], part.get("arguments", ""))
            for index, part in sorted(self._parts.items())
            if part.get("name")
        ]
        self._parts.clear()
        return done


def chunk_delta(payload: str) -> tuple[str, list[ToolCallFragment]]:
    """The text delta and the ``tool_calls`` fragments of one chunk."""
    try:
        chunk = _decode_chunk(payload)
    except msgspec.ValidationError as exc:
        raise ProviderResponseError("chat completion chunk is malformed") from exc
    except msgspec.DecodeError as exc:
        raise ProviderResponseError("chat completion chunk is not JSON") from exc
    error = chunk.error
    if error is not None:
        message = error.get("message", error) if isinstance(error, dict) else error
        raise ProviderResponseError(f"chat completion stream error: {message}", retryable=True)
    delta = chunk.choices[0].delta if chunk.choices else None
    if delta is None:
        return "", []
    return delta.content or "", delta.tool_calls or []


class OpenAiCompatLlm:
    """`Llm` over `POST {base_url}/chat/completions` with streaming."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str = DEFAULT_BASE_URLS["openai"],
        api_key: str = "",
        options: Mapping[str, JsonValue] | None = None,
        timeouts: Timeouts | None = None,
        name: str = "openai",
        egress: Egress | None = None,
    ) -> None:
        if not model:
            raise ProviderConfigError(f"{name}: llm model is required")
        self._model = model
        self._url = str(endpoint(name, base_url, "chat", "completions"))
        self._headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._options = dict(options or {})
        self._name = name
        self._session = OwnedSession(timeouts or Timeouts(), egress)

    @classmethod
    def from_config(cls, config: LlmConfig, *, egress: Egress | None = None) -> OpenAiCompatLlm:
        """A section of provider ``openai``, ``mistral``, ``xai``, ``ollama`` or
        ``openai-compatible`` (which names its ``base_url``)."""
        name = config.provider or "openai"
        base_url = config.base_url or DEFAULT_BASE_URLS.get(name)
        if not base_url:
            raise ProviderConfigError(f"{name}: llm base_url is required")
        given = {
            "temperature": config.temperature,
            "max_tokens": config.max_tokens,
            "top_p": config.top_p,
        }
        options: dict[str, JsonValue] = {k: v for k, v in given.items() if v is not None}
        return cls(
            model=config.model or "",
            base_url=base_url,
            api_key=config.api_key or "",
            options=options,
            timeouts=Timeouts.from_config(config),
            name=name,
            egress=egress,
        )

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        async for item in self.stream_with_tools(messages, ()):
            if isinstance(item, str):
                yield item

    async def stream_with_tools(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[str | ToolCall]:
        body = chat_request_body(self._model, messages, self._options, tools)
        with translate_errors(self._name):
            session = self._session.get()
            async with session.post(
                self._url, data=msgspec.json.encode(body), headers=self._headers
            ) as response:
                try:
                    await raise_for_status(self._name, response)
                    async for item in self._read_stream(response):
                        yield item
                finally:
                    abort_response(response)

    async def _read_stream(self, response: aiohttp.ClientResponse) -> AsyncIterator[str | ToolCall]:
        decoder = SseDecoder()
        calls = ToolCallAssembler()
        cap, total = self._session.caps.llm_reply_bytes, 0
        async for chunk in response.content.iter_any():
            total += len(chunk)
            if total > cap:
                raise too_large(self._name, "reply", cap)
            for event in decoder.feed(chunk):
                if event.data.strip() == "[DONE]":
                    for call in calls.calls():
                        yield call
                    return
                text, fragments = chunk_delta(event.data)
                calls.feed(fragments)
                if text or fragments:
                    yield text  # "": a call's fragment, the model's progress
        raise ProviderConnectionError(f"{self._name}: the reply stream ended before [DONE]")

    async def aclose(self) -> None:
        await self._session.aclose()
