"""How much voicedock reads from a server a tenant named: the response size caps.

A provider, tool server or organization server that answers without end (a hostile or broken
one) fails that turn or request once its answer passes the cap; the call and the node go on.
The caps are the operator's (constants here), never a tenant's.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import StreamReader

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True, slots=True)
class ResponseCaps:
    """The most bytes read from one answer of each kind."""

    llm_reply_bytes: int = 2 * MIB  # one streamed chat completion (its SSE bytes)
    tts_audio_bytes: int = 32 * MIB  # one synthesized utterance (minutes of 48 kHz PCM)
    stt_result_bytes: int = 1 * MIB  # one transcription's JSON
    websocket_message_bytes: int = 1 * MIB  # one message of a realtime or Deepgram socket
    server_answer_bytes: int = 256 * KIB  # a tool server's or assistant-request answer
    error_body_bytes: int = 4 * KIB  # what is read of an HTTP error answer


DEFAULT_CAPS = ResponseCaps()


async def read_at_most(content: StreamReader, cap: int) -> bytes:
    """A body read whole while it is at most ``cap`` bytes; past it, the first ``cap + 1``
    bytes (the caller refuses the answer). ``StreamReader.read(n)`` alone returns what has
    arrived so far, not ``n`` bytes."""
    body = b""
    while len(body) <= cap:
        more = await content.read(cap + 1 - len(body))
        if not more:
            break
        body += more
    return body
