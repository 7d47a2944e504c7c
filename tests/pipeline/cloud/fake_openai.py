"""OpenAI wire format for the fake server: scripted replies around the chat-completion wire
helpers of the LLM stand-in (``fakes.llm_standin``), error replies, chunked bodies."""

from __future__ import annotations

from fakes.llm_standin import chat_chunk, chat_stream_body, error_body
from fakes.local_server import Scripted

__all__ = [
    "chat_chunk",
    "chat_stream_body",
    "error_body",
    "error_reply",
    "split_every",
    "sse_reply",
]


def split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Scripted:
    return Scripted(
        status=status,
        chunks=[error_body(message)],
        headers=headers or {},
        content_type="application/json",
    )


def sse_reply(body: bytes, *, split: int | None = None, **kwargs: object) -> Scripted:
    chunks = split_every(body, split) if split else [body]
    return Scripted(chunks=chunks, content_type="text/event-stream", **kwargs)  # type: ignore[arg-type]
