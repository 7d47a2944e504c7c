"""Cutting PCM byte streams into exact chan_websocket frames (pure).

Outside START/STOP_MEDIA_BUFFERING, Asterisk cuts every BINARY message into
``optimal_frame_size`` frames and *drops* a trailing partial frame. So everything we send must be
whole frames: ``Framer`` keeps the remainder of each chunk until the next one completes it, and
``flush()`` pads the very last partial frame with silence instead of letting Asterisk drop it.

The same cut works inbound: Asterisk sometimes sends its stream in messages shorter than a frame
(58 or 76 bytes instead of 160), and ``MediaSession`` re-frames them byte for byte rather than
dropping them.
"""

from __future__ import annotations

from functools import lru_cache

from voicedock.domain.audio import FRAME_MS, AudioFormat


@lru_cache(maxsize=32)
def silence_frame(fmt: AudioFormat, ptime_ms: int = FRAME_MS) -> bytes:
    """One frame of digital silence in ``fmt`` (µ-law 0xFF, A-law 0xD5, linear zeros)."""
    return bytes([fmt.silence_byte]) * fmt.frame_bytes(ptime_ms)


class Framer:
    """Accumulates byte chunks of any size and hands out exact ``frame_bytes`` frames."""

    __slots__ = ("_buffer", "_pad_byte", "frame_bytes")

    def __init__(self, frame_bytes: int, *, pad_byte: int = 0x00) -> None:
        if frame_bytes <= 0:
            raise ValueError("frame_bytes must be positive")
        self.frame_bytes = frame_bytes
        self._pad_byte = pad_byte
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back because they do not make a whole frame yet."""
        return len(self._buffer)

    def push(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add ``data``; return every frame that is now complete, in order."""
        size = self.frame_bytes
        if not self._buffer and len(data) % size == 0:
            # Fast path: the producer already sends whole frames (the usual case).
            view = memoryview(data)
            return [bytes(view[i : i + size]) for i in range(0, len(view), size)]
        self._buffer += data
        whole = len(self._buffer) - len(self._buffer) % size
        view = memoryview(self._buffer)
        frames = [bytes(view[i : i + size]) for i in range(0, whole, size)]
        view.release()
        del self._buffer[:whole]
        return frames

    def flush(self) -> bytes | None:
        """The held-back remainder padded with silence to a whole frame, or None if empty."""
        if not self._buffer:
            return None
        frame = bytes(self._buffer) + bytes([self._pad_byte]) * (self.frame_bytes - self.pending)
        self._buffer.clear()
        return frame

    def clear(self) -> int:
        """Discard the remainder (barge-in); returns how many bytes were dropped."""
        dropped = len(self._buffer)
        self._buffer.clear()
        return dropped
