"""The pure pieces of the shared provider plumbing."""

from __future__ import annotations

import pytest

from voicedock.pipeline.audio import Pcm16Aligner
from voicedock.pipeline.providers._http import (
    RateLimitedError,
    SseDecoder,
    SseEvent,
    error_for_status,
    parse_retry_after,
    provider_error_text,
)
from voicedock.pipeline.providers.base import (
    ProviderConfigError,
    ProviderResponseError,
    ProviderTimeoutError,
)

pytestmark = pytest.mark.unit


def feed_bytewise(decoder: SseDecoder, data: bytes) -> list[SseEvent]:
    events: list[SseEvent] = []
    for i in range(len(data)):
        events += decoder.feed(data[i : i + 1])
    return events


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_sse_line_endings_and_split_bytes(newline: bytes) -> None:
    data = b"data: one\n\n: ping\n\nevent: x\ndata: a\ndata: b\n\ndata:[DONE]\n\n"
    data = data.replace(b"\n", newline)
    expected = [SseEvent("one"), SseEvent("a\nb", "x"), SseEvent("[DONE]")]
    assert SseDecoder().feed(data) == expected
    assert feed_bytewise(SseDecoder(), data) == expected


def test_sse_crlf_split_between_chunks_then_blank_line() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: x\r") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\n") == [SseEvent("x")]


def test_sse_incomplete_event_waits() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: par") == []
    assert decoder.feed(b"tial\n") == []
    assert decoder.feed(b"\n") == [SseEvent("partial")]


def test_sse_utf8_split_inside_a_character() -> None:
    data = "data: Grüße\n\n".encode()
    assert feed_bytewise(SseDecoder(), data) == [SseEvent("Grüße")]


def test_retry_after_forms() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    date = "Wed, 21 Oct 2015 07:28:10 GMT"
    assert parse_retry_after(date, now=1445412480.0) == 10.0


def test_status_mapping() -> None:
    assert isinstance(error_for_status("p", 403, b"", {}), ProviderConfigError)
    assert isinstance(error_for_status("p", 408, b"", {}), ProviderTimeoutError)
    limited = error_for_status("p", 429, b"", {"Retry-After": "1.5"})
    assert isinstance(limited, RateLimitedError)
    assert limited.retry_after_s == 1.5
    bad = error_for_status("p", 400, b'{"error": {"message": "bad voice"}}', {})
    assert isinstance(bad, ProviderResponseError)
    assert not bad.retryable
    assert "bad voice" in str(bad)
    assert error_for_status("p", 502, b"", {}).retryable


def test_error_text_shapes() -> None:
    assert provider_error_text(b'{"detail": {"status": "x", "message": "quota"}}') == "quota"
    assert provider_error_text(b'{"err_msg": "Invalid credentials"}') == "Invalid credentials"
    assert provider_error_text(b"Bad Gateway") == "Bad Gateway"


def test_pcm_aligner_keeps_whole_samples() -> None:
    aligner = Pcm16Aligner()
    assert aligner.push(b"\x01") == b""
    assert aligner.push(b"\x02\x03") == b"\x01\x02"
    assert aligner.push(b"\x04") == b"\x03\x04"
