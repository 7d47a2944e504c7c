"""The media websocket's upgrade, byte for byte (RFC 6455 §1.3's example key and accept), and
its data frames made into messages."""

from __future__ import annotations

import pytest

from voicedock.pbx.asterisk.media.websocket_wire import (
    MAX_MESSAGE,
    OP_BINARY,
    OP_CONTINUATION,
    OP_TEXT,
    Messages,
    WebSocketHandshakeError,
    WebSocketProtocolError,
    read_upgrade_response,
    upgrade_request,
)

pytestmark = pytest.mark.unit

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def answer(status: str = "101 Switching Protocols", accept: str = ACCEPT, extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    return f"{head}Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n".encode("latin-1")


def test_the_upgrade_request_asks_for_the_media_subprotocol() -> None:
    assert upgrade_request("/media/abc", "127.0.0.1:8088", KEY, ("media",)) == (
        b"GET /media/abc HTTP/1.1\r\nHost: 127.0.0.1:8088\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: media\r\n\r\n"
    )


def test_the_answer_is_read_once_its_head_is_complete() -> None:
    whole = answer(extra="Sec-WebSocket-Protocol: media\r\n")
    assert read_upgrade_response(whole[:-1], KEY, ("media",)) is None
    assert read_upgrade_response(whole + b"\x82\x00", KEY, ("media",)) == (len(whole), "media")
    assert read_upgrade_response(answer(), KEY, ("media",)) == (len(answer()), None)


@pytest.mark.parametrize(
    "response",
    [
        answer(status="200 OK"),
        answer(accept="x3JJHMbDL1EzLkh9GBhXDw=="),
        answer(extra="Sec-WebSocket-Protocol: other\r\n"),
        answer().replace(b"Upgrade: websocket", b"Upgrade: h2c"),
        b"HTTP/1.1 101 Switching Protocols\r\n" + b"X-Filler: y\r\n" * 2000,
    ],
)
def test_an_answer_that_is_no_upgrade_is_refused(response: bytes) -> None:
    with pytest.raises(WebSocketHandshakeError):
        read_upgrade_response(response, KEY, ("media",))


def test_a_whole_frame_is_a_message_and_fragments_are_joined_into_one() -> None:
    messages = Messages()
    assert messages.frame(True, OP_BINARY, b"\x01\x02") == b"\x01\x02"
    assert messages.frame(False, OP_TEXT, b"gr") is None
    assert messages.frame(False, OP_CONTINUATION, "\u00fc".encode()) is None
    assert messages.frame(True, OP_CONTINUATION, b"n") == "gr\u00fcn"
    assert messages.frame(True, OP_TEXT, b"") == ""


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([(True, OP_CONTINUATION, b"x")], 1002),  # a continuation without a message
        ([(False, OP_BINARY, b"x"), (True, OP_TEXT, b"y")], 1002),  # a message inside one
        ([(True, OP_TEXT, b"\xff\xfe")], 1007),  # not UTF-8
        ([(False, OP_TEXT, b"\xc3"), (True, OP_CONTINUATION, b"(")], 1007),
        ([(False, OP_BINARY, bytes(MAX_MESSAGE)), (True, OP_CONTINUATION, b"x")], 1009),
    ],
)
def test_what_rfc_6455_forbids_is_a_protocol_error_with_its_close_code(
    frames: list[tuple[bool, int, bytes]], code: int
) -> None:
    messages = Messages()
    *before, last = frames
    for fin, opcode, payload in before:
        assert messages.frame(fin, opcode, payload) is None
    with pytest.raises(WebSocketProtocolError) as failed:
        messages.frame(*last)
    assert failed.value.code == code
