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

from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.providers._http import (
    OwnedSession,
    SseDecoder,
    Timeouts,
    abort_response,
    raise_for_status,
    translate_errors,
)
from voicedock.pipeline.providers.base import (
    ProviderConfigError,
    ProviderConnectionError,
    ProviderResponseError,
)

DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "mistral": "https://api.mistral.ai/v1",
    "xai": "https://api.x.ai/v1",
    "ollama": "http://127.0.0.1:11434/v1",
}


def chat_request_body(
    model: str, messages: Sequence[ChatMessage], options: Mapping[str, Any]
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "stream": True,
    }
    body.update(options)
    return body


def chunk_text(payload: str) -> str:
    """The text delta of one `chat.completion.chunk` (empty for role-only or usage chunks)."""
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
        return ""
    delta = choices[0].get("delta") or {}
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else ""


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
    ) -> None:
        if not model:
            raise ProviderConfigError(f"{name}: llm model is required")
        self._model = model
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"Accept": "text/event-stream"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._options = dict(options or {})
        self._name = name
        self._session = OwnedSession(timeouts or Timeouts())

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, default_key: str = "") -> OpenAiCompatLlm:
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
        )

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        body = chat_request_body(self._model, messages, self._options)
        with translate_errors(self._name):
            session = self._session.get()
            async with session.post(self._url, json=body, headers=self._headers) as response:
                try:
                    await raise_for_status(self._name, response)
                    async for text in self._read_stream(response):
                        yield text
                finally:
                    abort_response(response)

    async def _read_stream(self, response: Any) -> AsyncIterator[str]:
        decoder = SseDecoder()
        async for chunk in response.content.iter_any():
            for event in decoder.feed(chunk):
                if event.data.strip() == "[DONE]":
                    return
                text = chunk_text(event.data)
                if text:
                    yield text
        raise ProviderConnectionError(f"{self._name}: the reply stream ended before [DONE]")

    async def aclose(self) -> None:
        await self._session.aclose()
