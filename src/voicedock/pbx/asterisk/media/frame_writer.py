"""``FrameWriter``: synchronous websocket writes of one media connection, for the frame clock.

The shared ``MediaClock`` writes every session's frames inside one tick, so a write cannot be a
coroutine: ``FrameWriter`` builds the RFC 6455 frames itself (``encode_frame``: header, and the
client's 4-byte mask when we dialled Asterisk) and hands a visit's bytes to the connection's
transport in one ``write`` call. ``binary()`` and ``text()`` only collect: consecutive audio
frames become one binary message (chan_websocket cuts it back into ``optimal_frame_size``
frames), a text message (MARK_MEDIA, FLUSH_MEDIA) closes it and keeps its place between them,
and ``flush()`` writes everything collected. Whole frames in one write keep the byte stream
well formed next to aiohttp's own writes on the same transport (close, pong, our awaited
commands); the owner flushes before it returns to the event loop, so nothing collected waits
behind such a write.

Back-pressure never blocks the clock: ``is_congested()`` says the transport holds more than
``high_water`` bytes the peer has not taken, and the session skips its visit (the frames stay
queued, nothing is lost) until the buffer drains.

aiohttp exposes no public synchronous send; the writer reaches the websocket's transport and
mask setting through its ``WebSocketWriter`` (``_writer``), checked once when the session
starts, and refuses to write once the websocket is closed or the transport is closing.
"""

from __future__ import annotations

import random
from typing import Final, Protocol, runtime_checkable

from voicedock.errors import MediaError
from voicedock.pbx.asterisk.media.handshake import MediaWebSocket
from voicedock.pbx.asterisk.media.websocket_client import WebSocketClient
from voicedock.pbx.asterisk.media.websocket_wire import OP_BINARY, OP_TEXT, encode_frame

HIGH_WATER: Final = 64 * 1024
"""Unsent bytes on a connection from which its visits are skipped (~2 s of µ-law)."""


@runtime_checkable
class WritableTransport(Protocol):
    """What the writer uses of the websocket's transport (aiohttp's, or the client's own)."""

    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...

    def get_write_buffer_size(self) -> int: ...


class FrameWriter:
    """Collects whole websocket frames for one media connection; ``flush()`` writes them."""

    __slots__ = ("_audio", "_out", "_random", "_transport", "_ws", "high_water", "masked")

    def __init__(self, ws: MediaWebSocket, *, high_water: int = HIGH_WATER) -> None:
        writer: object = ws if isinstance(ws, WebSocketClient) else getattr(ws, "_writer", None)
        transport = getattr(writer, "transport", None)
        if not isinstance(transport, WritableTransport):
            raise MediaError("the media websocket has no transport to write to")
        self._ws = ws
        self._transport = transport
        self.masked = bool(getattr(writer, "use_mask", False))
        self.high_water = high_water
        self._random = random.Random()
        self._audio: list[bytes] = []  # audio frames of the binary message being collected
        self._out: list[bytes] = []  # encoded websocket frames waiting for flush()

    def is_congested(self) -> bool:
        return self._transport.get_write_buffer_size() > self.high_water

    def binary(self, payload: bytes) -> None:
        """Audio: joins the binary message being collected."""
        self._audio.append(payload)

    def text(self, text: str) -> None:
        """A control message, after the audio collected so far."""
        self._close_audio()
        self._out.append(self._encode(text.encode("utf-8"), OP_TEXT))

    def flush(self) -> None:
        """Write everything collected in one call; ``ConnectionResetError`` once the websocket
        closed (what was collected is dropped: nobody can hear it)."""
        self._close_audio()
        if not self._out:
            return
        out, self._out = self._out, []
        if self._ws.closed or self._transport.is_closing():
            raise ConnectionResetError("media websocket is closed")
        self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _close_audio(self) -> None:
        if self._audio:
            audio, self._audio = self._audio, []
            payload = audio[0] if len(audio) == 1 else b"".join(audio)
            self._out.append(self._encode(payload, OP_BINARY))

    def _encode(self, payload: bytes, opcode: int) -> bytes:
        mask = self._random.getrandbits(32).to_bytes(4, "little") if self.masked else None
        return encode_frame(payload, opcode, mask)
