"""``FrameWriter``: synchronous websocket writes of one media connection, for the frame clock.

The shared ``MediaClock`` writes every session's frame inside one tick, so a write cannot be a
coroutine: ``FrameWriter`` builds the RFC 6455 frame itself (``encode_frame``: header, and the
client's 4-byte mask when we dialled Asterisk) and hands it to the connection's transport in
one ``write`` call. Whole frames in one write each keep the byte stream well formed next to
aiohttp's own writes on the same transport (close, pong, our awaited commands).

Back-pressure never blocks the clock: ``is_congested()`` says the transport holds more than
``high_water`` bytes the peer has not taken, and the session skips its frame slot (the frame
stays queued, nothing is lost) until the buffer drains.

aiohttp exposes no public synchronous send; the writer reaches the websocket's transport and
mask setting through its ``WebSocketWriter`` (``_writer``), checked once when the session
starts, and refuses to write once the websocket is closed or the transport is closing.
"""

from __future__ import annotations

import asyncio
import random
import struct
from typing import Final

from voicedock.errors import MediaError
from voicedock.media.transport import MediaWebSocket

OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
_FIN: Final = 0x80
_MASKED: Final = 0x80
HIGH_WATER: Final = 64 * 1024
"""Unsent bytes on a connection from which its frame slots are skipped (~2 s of µ-law)."""


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
    key = (mask * (length // 4 + 1))[:length]
    masked = int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")
    return header + mask + masked.to_bytes(length, "little")


class FrameWriter:
    """Writes whole websocket frames to one media connection without awaiting."""

    __slots__ = (
        "_prebuilt",
        "_prebuilt_payload",
        "_random",
        "_transport",
        "_ws",
        "high_water",
        "masked",
    )

    def __init__(
        self, ws: MediaWebSocket, *, repeated: bytes = b"", high_water: int = HIGH_WATER
    ) -> None:
        """``repeated`` is a payload sent over and over (the silence frame): unless frames
        must be masked it is encoded once and its prebuilt frame written each time."""
        writer = getattr(ws, "_writer", None)
        transport = getattr(writer, "transport", None)
        if not all(
            hasattr(transport, name) for name in ("write", "is_closing", "get_write_buffer_size")
        ):
            raise MediaError("the media websocket has no transport to write to")
        self._ws = ws
        self._transport: asyncio.WriteTransport = transport  # type: ignore[assignment]
        self.masked = bool(getattr(writer, "use_mask", False))
        self.high_water = high_water
        self._random = random.Random()
        self._prebuilt_payload = repeated if repeated and not self.masked else None
        self._prebuilt = encode_frame(repeated, OP_BINARY) if self._prebuilt_payload else b""

    @property
    def buffered(self) -> int:
        """Bytes written but not yet taken by the peer."""
        return self._transport.get_write_buffer_size()

    def is_congested(self) -> bool:
        return self._transport.get_write_buffer_size() > self.high_water

    def binary(self, payload: bytes) -> None:
        if payload is self._prebuilt_payload:
            if self._ws.closed or self._transport.is_closing():
                raise ConnectionResetError("media websocket is closed")
            self._transport.write(self._prebuilt)
        else:
            self.write(payload, OP_BINARY)

    def text(self, text: str) -> None:
        self.write(text.encode("utf-8"), OP_TEXT)

    def write(self, payload: bytes, opcode: int) -> None:
        """One frame now; ``ConnectionResetError`` once the websocket closes."""
        if self._ws.closed or self._transport.is_closing():
            raise ConnectionResetError("media websocket is closed")
        mask = self._random.getrandbits(32).to_bytes(4, "little") if self.masked else None
        self._transport.write(encode_frame(payload, opcode, mask))
