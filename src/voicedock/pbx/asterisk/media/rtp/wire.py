"""RTP as Asterisk's UnicastRTP channel speaks it (RFC 3550, RFC 3389): pure, bytes in,
typed packets out.

There is no SDP on an ``externalMedia`` leg, so Asterisk uses its static payload types
(``main/rtp_engine.c``): µ-law 0, A-law 8, comfort noise 13. A leg carries G.711 only
(``leg_format``): Asterisk would send 16 kHz linear audio (118) but drops it from voicedock.

``parse`` never raises: a datagram that is not an RTP packet voicedock can use (another version,
a header longer than the datagram, padding that does not fit) is ``None``. Comfort noise (RFC
3389) says the far end has stopped sending while it is silent: the caller is silent, whatever
noise level it names. Keys are not read here: Asterisk reports them on the caller's channel over
ARI, whatever the leg.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from voicedock.domain.audio import ALAW, ULAW, AudioFormat

__all__ = [
    "COMFORT_NOISE",
    "HEADER",
    "RtpPacket",
    "RtpSender",
    "leg_format",
    "parse",
    "payload_type",
]

HEADER: Final = 12
"""Bytes of a header with no contributing sources and no extension."""
COMFORT_NOISE: Final = 13
_PAYLOAD_TYPES: Final[dict[str, int]] = {ULAW.name: 0, ALAW.name: 8}
_FIXED = struct.Struct("!BBHII")


def leg_format(call_format: AudioFormat) -> AudioFormat:
    """The format an RTP leg carries for a call in ``call_format``: G.711 as it is, anything
    else as µ-law. UnicastRTP takes from voicedock only static payload types (up to 34): it
    drops 16 kHz linear (118) without a word, so a wideband call's leg is µ-law both ways."""
    return call_format if call_format.name in (ULAW.name, ALAW.name) else ULAW


def payload_type(fmt: AudioFormat) -> int:
    """Asterisk's static payload type of a call format; ``ValueError`` for one RTP here
    does not carry."""
    try:
        return _PAYLOAD_TYPES[fmt.name]
    except KeyError:
        raise ValueError(f"no RTP payload type for {fmt.name!r}") from None


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


def parse(datagram: bytes) -> RtpPacket | None:
    """One datagram as an RTP packet; ``None`` if it is none voicedock can read."""
    size = len(datagram)
    if size < HEADER:
        return None
    first, second, sequence, timestamp, ssrc = _FIXED.unpack_from(datagram)
    if first >> 6 != 2:
        return None
    start = HEADER + 4 * (first & 0x0F)  # contributing sources
    if first & 0x10:  # a header extension: 16-bit profile, 16-bit length in words
        if size < start + 4:
            return None
        start += 4 + 4 * int.from_bytes(datagram[start + 2 : start + 4], "big")
    end = size
    if first & 0x20:  # padding: its last byte counts the padding bytes
        end -= datagram[-1]
    if start > end or end > size:
        return None
    return RtpPacket(
        payload_type=second & 0x7F,
        marker=bool(second & 0x80),
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=datagram[start:end],
    )


class RtpSender:
    """The header of each packet voicedock sends on one leg: one source, a sequence number and
    a timestamp that advance by a frame per packet (RFC 3550 §5.1), starting at random values."""

    __slots__ = ("_first", "_samples", "_sequence", "_ssrc", "_timestamp", "payload_type")

    def __init__(self, payload_type: int, samples_per_frame: int, *, seed: bytes) -> None:
        """``seed``: at least 10 random bytes (source, sequence, timestamp)."""
        if len(seed) < 10:
            raise ValueError("an RTP sender needs 10 random bytes")
        self.payload_type = payload_type
        self._samples = samples_per_frame
        self._ssrc = int.from_bytes(seed[0:4], "big")
        self._sequence = int.from_bytes(seed[4:6], "big")
        self._timestamp = int.from_bytes(seed[6:10], "big")
        self._first = True

    @property
    def ssrc(self) -> int:
        return self._ssrc

    def packet(self, payload: bytes) -> bytes:
        """The next packet carrying ``payload`` (one frame); the first has the marker bit."""
        second = self.payload_type | (0x80 if self._first else 0)
        self._first = False
        header = _FIXED.pack(0x80, second, self._sequence, self._timestamp, self._ssrc)
        self._sequence = (self._sequence + 1) & 0xFFFF
        self._timestamp = (self._timestamp + self._samples) & 0xFFFFFFFF
        return header + payload
