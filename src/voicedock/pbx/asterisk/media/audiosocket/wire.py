"""AudioSocket as Asterisk speaks it (``res/res_audiosocket.c``): pure, bytes in, messages out.

Every message is ``kind (1 byte) | length (2 bytes, big-endian) | payload``. Asterisk opens the
connection with the leg's 16-byte UUID (kind 0x01), then sends the caller's audio as signed
linear 16-bit little-endian samples (0x10 at 8 kHz; recent builds also 0x11-0x18 for higher
rates: the kind follows the leg's format, so a leg is opened in 8 kHz linear, which every
AudioSocket build reads and writes) and a key as one ASCII character (0x03). voicedock sends
audio the same way and a hang-up as an empty 0x00 message; Asterisk ends the session on any
other kind. ``MessageReader`` cuts a byte stream into messages and never raises: a stream that
breaks the framing is ``broken`` and yields nothing more.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

from voicedock.domain.audio import SLIN, SLIN16, AudioFormat

__all__ = [
    "AUDIO_KINDS",
    "KIND_DTMF",
    "KIND_ERROR",
    "KIND_HANGUP",
    "KIND_UUID",
    "Message",
    "MessageReader",
    "audio_kind",
    "encode",
    "hangup",
    "leg_format",
    "uuid_of",
]

KIND_HANGUP: Final = 0x00
KIND_UUID: Final = 0x01
KIND_DTMF: Final = 0x03
KIND_ERROR: Final = 0xFF
AUDIO_KINDS: Final[dict[int, AudioFormat]] = {0x10: SLIN, 0x12: SLIN16}
_KIND_OF: Final[dict[str, int]] = {fmt.name: kind for kind, fmt in AUDIO_KINDS.items()}
MAX_PAYLOAD: Final = 0xFFFF


def leg_format(call_format: AudioFormat) -> AudioFormat:
    """The format an AudioSocket leg carries for a call in ``call_format``: 8 kHz signed
    linear, whatever the call's (G.711 would be mislabelled as linear, and Asterisk before
    the 16 kHz kinds reads every audio message as 8 kHz)."""
    del call_format
    return SLIN


def audio_kind(fmt: AudioFormat) -> int:
    try:
        return _KIND_OF[fmt.name]
    except KeyError:
        raise ValueError(f"AudioSocket carries no {fmt.name!r}") from None


def encode(kind: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("an AudioSocket message holds at most 65535 bytes")
    return bytes((kind,)) + len(payload).to_bytes(2, "big") + payload


def hangup() -> bytes:
    return encode(KIND_HANGUP)


def uuid_of(payload: bytes) -> str | None:
    """The leg's UUID from the first message's payload (its canonical text form)."""
    if len(payload) != 16:
        return None
    return str(uuid.UUID(bytes=payload))


@dataclass(frozen=True, slots=True)
class Message:
    kind: int
    payload: bytes


class MessageReader:
    """Messages from a byte stream, as its pieces arrive."""

    __slots__ = ("_buffer", "broken", "max_payload")

    def __init__(self, *, max_payload: int = MAX_PAYLOAD) -> None:
        self._buffer = bytearray()
        self.max_payload = max_payload
        self.broken = False

    def feed(self, data: bytes) -> list[Message]:
        """Every message ``data`` completes, in order."""
        if self.broken:
            return []
        buffer = self._buffer
        buffer += data
        out: list[Message] = []
        start = 0
        while len(buffer) - start >= 3:
            length = int.from_bytes(buffer[start + 1 : start + 3], "big")
            if length > self.max_payload:
                self.broken = True
                buffer.clear()
                return out
            end = start + 3 + length
            if end > len(buffer):
                break
            out.append(Message(buffer[start], bytes(buffer[start + 3 : end])))
            start = end
        del buffer[:start]
        return out

    @property
    def pending(self) -> int:
        return len(self._buffer)
