"""Chat completions over the OpenAI-compatible HTTP API, streamed as Server-Sent Events.

One client serves every server that speaks `POST {base_url}/chat/completions` with
`"stream": true`: OpenAI, Mistral, xAI, and local Ollama, vLLM or llama.cpp servers (which
need no key). Each SSE event carries a `chat.completion.chunk` whose
`choices[0].delta.content` is the next piece of text; `data: [DONE]` ends the reply.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from voicedock.config import OLLAMA_BASE_URL
from voicedock.egress import Egress
from voicedock.pipeline.frames import ChatMessage, ToolCall
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


def chat_request_body(
    model: str,
    messages: Sequence[ChatMessage],
    options: Mapping[str, Any],
    tools: Sequence[ToolSpec] = (),
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [wire_message(m) for m in messages],
        "stream": True,
    }
    if tools:
        body["tools"] = [tool.openai_tool() for tool in tools]
    body.update(options)
    return body


def wire_message(message: ChatMessage) -> dict[str, Any]:
    """One context message as the API takes it (tool calls and tool results included)."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["content"] = message.content or None
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id
    return out


class ToolCallAssembler:
    """Collects the ``delta.tool_calls`` fragments of a streamed reply (by ``index``: the id
    and name come first, the arguments' JSON text in pieces) into whole ``ToolCall``s."""

    def __init__(self) -> None:
        self._parts: dict[int, dict[str, str]] = {}

    def feed(self, fragments: object) -> None:
        if not isinstance(fragments, list):
            return
        for fragment in fragments:
            if not isinstance(fragment, dict):
                continue
            index = fragment.get("index", 0)
            part = self._parts.setdefault(index if isinstance(index, int) else 0, {})
            if isinstance(call_id := fragment.get("id"), str) and call_id:
                part["id"] = call_id
            function = fragment.get("function")
            if isinstance(function, dict):
                if isinstance(name := function.get("name"), str) and name:
                    part["name"] = part.get("name", "") + name
                if isinstance(arguments := function.get("arguments"), str):
                    part["arguments"] = part.get("arguments", "") + arguments

    def calls(self) -> list[ToolCall]:
        """The complete calls, in the model's order (a fragment without a name is dropped)."""
        done = [
            ToolCall(part.get("id") or f"call_{index}", part["name"], part.get("arguments", ""))
            for index, part in sorted(self._parts.items())
            if part.get("name")
        ]
        self._parts.clear()
        return done


def chunk_delta(payload: str) -> tuple[str, object]:
    """The text delta and the ``tool_calls`` fragments (or ``None``) of one chunk."""
    try:
        doc = json.loads(payload)
    except ValueError as exc:
        raise ProviderResponseError("chat completion chunk is not JSON") from exc
    if not isinstance(doc, dict):
        raise ProviderResponseError("chat completion chunk is not an object")
    error = doc.get("error")
    if error is not None:
        message = error.get("message", error) if isinstance(error, dict) else error
        raise ProviderResponseError(f"chat completion stream error: {message}", retryable=True)
    choices = doc.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return "", None
    delta = choices[0].get("delta") or {}
    if not isinstance(delta, dict):
        return "", None
    content = delta.get("content")
    return (content if isinstance(content, str) else ""), delta.get("tool_calls")


class OpenAiCompatLlm:
    """`Llm` over `POST {base_url}/chat/completions` with streaming."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str = DEFAULT_BASE_URLS["openai"],
        api_key: str = "",
        options: Mapping[str, Any] | None = None,
        timeouts: Timeouts | None = None,
        name: str = "openai",
        egress: Egress | None = None,
    ) -> None:
        if not model:
            raise ProviderConfigError(f"{name}: llm model is required")
        self._model = model
        self._url = str(endpoint(name, base_url, "chat", "completions"))
        self._headers = {"Accept": "text/event-stream"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._options = dict(options or {})
        self._name = name
        self._session = OwnedSession(timeouts or Timeouts(), egress)

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, default_key: str = "", egress: Egress | None = None
    ) -> OpenAiCompatLlm:
        """`{"provider": "openai"|"mistral"|"xai"|"ollama"|"openai-compatible", "model": ..,
        "base_url": .., "api_key": .., "temperature": .., "max_tokens": ..}`"""
        name = str(config.get("provider", "openai"))
        base_url = config.get("base_url") or DEFAULT_BASE_URLS.get(name)
        if not base_url:
            raise ProviderConfigError(f"{name}: llm base_url is required")
        options = {k: config[k] for k in ("temperature", "max_tokens", "top_p") if k in config}
        return cls(
            model=str(config.get("model", "")),
            base_url=str(base_url),
            api_key=str(config.get("api_key") or default_key),
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
            async with session.post(self._url, json=body, headers=self._headers) as response:
                try:
                    await raise_for_status(self._name, response)
                    async for item in self._read_stream(response):
                        yield item
                finally:
                    abort_response(response)

    async def _read_stream(self, response: Any) -> AsyncIterator[str | ToolCall]:
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
                if text:
                    yield text
        raise ProviderConnectionError(f"{self._name}: the reply stream ended before [DONE]")

    async def aclose(self) -> None:
        await self._session.aclose()
