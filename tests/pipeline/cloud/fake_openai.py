"""OpenAI wire format for the fake server: chat-completion SSE streams as the API sends
them (role chunk, content chunks, finish chunk, `data: [DONE]`), error bodies, PCM."""

from __future__ import annotations

import json

from .fake_server import Scripted


def chat_chunk(content: str | None, *, role: bool = False, finish: str | None = None) -> bytes:
    delta: dict[str, str] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    doc = {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1694268190,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(doc).encode() + b"\n\n"


def chat_stream_body(pieces: list[str]) -> bytes:
    body = chat_chunk("", role=True)
    for piece in pieces:
        body += chat_chunk(piece)
    body += chat_chunk(None, finish="stop")
    return body + b"data: [DONE]\n\n"


def split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}
    ).encode()


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
