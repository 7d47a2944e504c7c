"""RFC 6455 as voicedock's media websocket client speaks it: frames, messages and the upgrade
(pure).

No sockets: ``encode_frame`` and ``next_frame`` turn one frame into bytes and back (masking,
the 7/16/64-bit lengths), ``Messages`` makes the data frames read into messages (fragmented
ones reassembled, text checked as UTF-8), ``upgrade_request`` is the HTTP/1.1 request that
asks a server for a websocket and ``read_upgrade_response`` checks its answer (status 101,
``Upgrade: websocket``, ``Sec-WebSocket-Accept`` derived from our key, a subprotocol we
offered). The connection that uses them is ``websocket_client.WebSocketClient``; the
``FrameWriter`` builds its frames here too.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Sequence
from typing import Final

__all__ = [
    "ABNORMAL_CLOSURE",
    "MAX_MESSAGE",
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONTINUATION",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "Messages",
    "WebSocketHandshakeError",
    "WebSocketProtocolError",
    "apply_mask",
    "encode_frame",
    "next_frame",
    "read_upgrade_response",
    "upgrade_request",
]

OP_CONTINUATION: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA
_FIN: Final = 0x80
_MASKED: Final = 0x80
_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_MAX_HEADERS: Final = 16 * 1024
MAX_MESSAGE: Final = 4 * 1024 * 1024
"""Largest message accepted (as aiohttp's default); beyond it the connection closes with 1009."""
ABNORMAL_CLOSURE: Final = 1006


class WebSocketHandshakeError(ConnectionError):
    """The server did not upgrade the connection to a websocket as asked."""


class WebSocketProtocolError(ConnectionError):
    """The peer broke RFC 6455; ``code`` is the close code we answered with."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def apply_mask(payload: bytes, mask: bytes) -> bytes:
    """RFC 6455 masking (its own inverse): ``payload`` XOR the repeated 4-byte ``mask``."""
    length = len(payload)
    key = (mask * (length // 4 + 1))[:length]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(
        length, "little"
    )


def encode_frame(payload: bytes, opcode: int, mask: bytes | None = None) -> bytes:
    """One unfragmented websocket frame; ``mask`` (4 bytes) is required from a client."""
    length = len(payload)
    mask_bit = _MASKED if mask is not None else 0
    if length < 126:
        header = struct.pack("!BB", _FIN | opcode, mask_bit | length)
    elif length < 65536:
        header = struct.pack("!BBH", _FIN | opcode, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", _FIN | opcode, mask_bit | 127, length)
    if mask is None:
        return header + payload
    if len(mask) != 4:
        raise ValueError("a websocket mask is 4 bytes")
    return header + mask + apply_mask(payload, mask)


def next_frame(
    buffer: bytes | bytearray, pos: int = 0, max_length: int | None = None
) -> tuple[int, bytes, int] | None:
    """The frame starting at ``pos`` in ``buffer``: its first header byte (FIN, RSV, opcode),
    its payload unmasked, and where the next frame starts; None while it is incomplete.
    ``ValueError`` for a payload longer than ``max_length`` (default ``MAX_MESSAGE``)."""
    size = len(buffer)
    if size - pos < 2:
        return None
    first, second = buffer[pos], buffer[pos + 1]
    length = second & 0x7F
    head = pos + 2
    if length == 126:
        if size - head < 2:
            return None
        length = (buffer[head] << 8) | buffer[head + 1]
        head += 2
    elif length == 127:
        if size - head < 8:
            return None
        length = int.from_bytes(buffer[head : head + 8], "big")
        head += 8
    mask = None
    if second & 0x80:
        if size - head < 4:
            return None
        mask = bytes(buffer[head : head + 4])
        head += 4
    if length > (MAX_MESSAGE if max_length is None else max_length):
        raise ValueError(f"a websocket frame of {length} bytes")
    if size - head < length:
        return None
    payload = bytes(buffer[head : head + length])
    return first, payload if mask is None else apply_mask(payload, mask), head + length


class Messages:
    """The data frames of one connection (text, binary, continuation) as messages: a whole one
    at a time, fragmented ones reassembled up to ``MAX_MESSAGE``."""

    __slots__ = ("_fragments", "_opcode", "_size")

    def __init__(self) -> None:
        self._fragments: list[bytes] = []
        self._opcode = 0
        self._size = 0

    def frame(self, fin: bool, opcode: int, payload: bytes) -> str | bytes | None:
        """The message a data frame completes (text as ``str``, binary as ``bytes``), None
        while a fragmented one goes on; ``WebSocketProtocolError`` for what RFC 6455
        forbids (the close code to answer with: 1002, 1007, 1009)."""
        if opcode != OP_CONTINUATION:
            if self._fragments:
                raise WebSocketProtocolError("a new message inside a fragmented one", 1002)
            if fin:
                return _message(opcode, payload)
            self._opcode, self._fragments = opcode, [payload]
            self._size = len(payload)
            return None
        if not self._fragments:
            raise WebSocketProtocolError("a continuation without a message", 1002)
        self._fragments.append(payload)
        self._size += len(payload)
        if self._size > MAX_MESSAGE:
            raise WebSocketProtocolError("message too big", 1009)
        if not fin:
            return None
        whole, self._fragments = b"".join(self._fragments), []
        return _message(self._opcode, whole)


def _message(opcode: int, payload: bytes) -> str | bytes:
    if opcode == OP_BINARY:
        return payload
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        raise WebSocketProtocolError("text that is not UTF-8", 1007) from None


def upgrade_request(path: str, host: str, key: bytes, protocols: Sequence[str]) -> bytes:
    """The HTTP/1.1 request for a websocket at ``path`` on ``host`` (``host:port``), with our
    ``Sec-WebSocket-Key`` and the subprotocols we offer."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key.decode()}",
        "Sec-WebSocket-Version: 13",
    ]
    if protocols:
        lines.append(f"Sec-WebSocket-Protocol: {', '.join(protocols)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_upgrade_response(
    buffer: bytes | bytearray, key: bytes, protocols: Sequence[str]
) -> tuple[int, str | None] | None:
    """The server's answer at the start of ``buffer``: how many bytes its head took and the
    subprotocol it chose (``None``: none); ``None`` while the head is incomplete.
    ``WebSocketHandshakeError`` when the server did not upgrade as asked."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > _MAX_HEADERS:
            raise WebSocketHandshakeError("the upgrade response headers are too long")
        return None
    head = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    status = head[0].split(" ", 2)
    fields = (line.partition(":") for line in head[1:])
    headers = {name.strip().lower(): value.strip() for name, _, value in fields}
    accept = base64.b64encode(hashlib.sha1(key + _GUID, usedforsecurity=False).digest()).decode()
    chosen = headers.get("sec-websocket-protocol") or None
    if len(status) < 2 or status[1] != "101":
        raise WebSocketHandshakeError(f"the server answered {' '.join(status[1:])[:60]!r}, not 101")
    if headers.get("upgrade", "").lower() != "websocket":
        raise WebSocketHandshakeError("the server did not upgrade to websocket")
    if headers.get("sec-websocket-accept") != accept:
        raise WebSocketHandshakeError("wrong Sec-WebSocket-Accept")
    if chosen is not None and chosen not in protocols:
        raise WebSocketHandshakeError(f"the server chose subprotocol {chosen[:40]!r}")
    return end + 4, chosen
