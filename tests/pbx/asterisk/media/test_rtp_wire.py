"""The RTP codec byte for byte: RFC 3550 headers read (contributing sources, a header
extension, padding), anything unusable ``None``, and the headers voicedock writes."""

from __future__ import annotations

import struct

import pytest

from voicedock.domain.audio import ALAW, SLIN, SLIN16, ULAW
from voicedock.pbx.asterisk.media.rtp import wire
from voicedock.pbx.asterisk.media.rtp.wire import RtpPacket, RtpSender

pytestmark = pytest.mark.unit

PAYLOAD = bytes(range(160))


def header(
    *,
    version: int = 2,
    padding: bool = False,
    extension: bool = False,
    csrc: int = 0,
    marker: bool = False,
    pt: int = 0,
    seq: int = 0x1234,
    ts: int = 0x89ABCDEF,
    ssrc: int = 0xCAFEF00D,
) -> bytes:
    first = version << 6 | padding << 5 | extension << 4 | csrc
    return struct.pack("!BBHII", first, marker << 7 | pt, seq, ts, ssrc)


def test_a_plain_packet() -> None:
    packet = wire.parse(header(marker=True, pt=8) + PAYLOAD)
    assert packet == RtpPacket(
        payload_type=8,
        marker=True,
        sequence=0x1234,
        timestamp=0x89ABCDEF,
        ssrc=0xCAFEF00D,
        payload=PAYLOAD,
    )
    plain = wire.parse(header(pt=0, seq=65535, ts=0xFFFFFFFF) + b"")
    assert plain is not None
    assert (plain.marker, plain.sequence, plain.timestamp, plain.payload) == (
        False,
        65535,
        0xFFFFFFFF,
        b"",
    )
    # The marker bit is not part of the payload type: 127 with and without it.
    assert wire.parse(header(pt=127, marker=True) + PAYLOAD).payload_type == 127  # type: ignore[union-attr]


def test_contributing_sources_are_skipped() -> None:
    csrcs = struct.pack("!III", 1, 2, 3)
    packet = wire.parse(header(csrc=3) + csrcs + PAYLOAD)
    assert packet is not None
    assert packet.payload == PAYLOAD
    # Fifteen sources announced, three there: the header is longer than the datagram.
    assert wire.parse(header(csrc=15) + csrcs) is None


def test_a_header_extension_is_skipped() -> None:
    extension = struct.pack("!HH", 0xBEDE, 2) + b"\x10\xaa\x00\x00" + b"\x21\xbb\xcc\x00"
    packet = wire.parse(header(extension=True) + extension + PAYLOAD)
    assert packet is not None
    assert packet.payload == PAYLOAD
    # After contributing sources too.
    both = wire.parse(header(extension=True, csrc=1) + b"\x00\x00\x00\x07" + extension + PAYLOAD)
    assert both is not None
    assert both.payload == PAYLOAD
    # An empty extension (length 0 words) is just its 4-byte header.
    empty = wire.parse(header(extension=True) + struct.pack("!HH", 0x1000, 0) + PAYLOAD)
    assert empty is not None
    assert empty.payload == PAYLOAD


@pytest.mark.parametrize(
    "datagram",
    [
        header(extension=True),  # no room for the extension's own header
        header(extension=True) + b"\xbe\xde",  # half of it
        header(extension=True) + struct.pack("!HH", 0xBEDE, 3) + b"\x00" * 8,  # 3 words, 2 there
    ],
)
def test_an_extension_longer_than_the_datagram(datagram: bytes) -> None:
    assert wire.parse(datagram) is None


def test_padding_is_cut_off() -> None:
    packet = wire.parse(header(padding=True) + PAYLOAD + b"\x00\x00\x00\x04")
    assert packet is not None
    assert packet.payload == PAYLOAD
    # All padding: an empty payload.
    only = wire.parse(header(padding=True) + b"\x00\x00\x00\x04")
    assert only is not None
    assert only.payload == b""
    # Padding after an extension.
    ext = struct.pack("!HH", 0xBEDE, 1) + b"\x10\xaa\x00\x00"
    both = wire.parse(header(padding=True, extension=True) + ext + PAYLOAD + b"\x02\x02")
    assert both is not None
    assert both.payload == PAYLOAD


@pytest.mark.parametrize(
    "datagram",
    [
        header(padding=True) + b"\x00\x05",  # 5 padding bytes, 2 after the header
        header(padding=True, csrc=1) + b"\x00\x00\x00\x01" + b"\x09",  # into the header
        header(padding=True) + b"\xff" * 3,  # 255 bytes of padding
    ],
)
def test_padding_that_does_not_fit(datagram: bytes) -> None:
    assert wire.parse(datagram) is None


@pytest.mark.parametrize("version", [0, 1, 3])
def test_other_versions_are_not_rtp(version: int) -> None:
    assert wire.parse(header(version=version) + PAYLOAD) is None


@pytest.mark.parametrize("size", [0, 1, 11])
def test_shorter_than_a_header(size: int) -> None:
    assert wire.parse((header() + PAYLOAD)[:size]) is None
    assert wire.parse(header()[:12]) is not None  # exactly a header: an empty packet


def test_garbage_never_raises() -> None:
    for first in range(256):
        for tail in (b"", b"\x00", b"\xff" * 20, bytes(range(40))):
            datagram = bytes((first, 0)) + b"\x00" * 10 + tail
            packet = wire.parse(datagram)
            if packet is not None:
                assert first >> 6 == 2
                assert len(packet.payload) <= len(datagram) - 12


def test_the_sender_starts_from_its_seed_and_marks_the_first_packet() -> None:
    seed = bytes.fromhex("112233445566778899aa")
    sender = RtpSender(0, 160, seed=seed)
    assert sender.ssrc == 0x11223344
    first = sender.packet(PAYLOAD)
    assert first == bytes.fromhex("80 80 5566 778899aa 11223344") + PAYLOAD
    second = sender.packet(b"\x01\x02")
    assert second == bytes.fromhex("80 00 5567 77889a4a 11223344") + b"\x01\x02"  # +1, +160
    third = sender.packet(b"")
    assert third == bytes.fromhex("80 00 5568 77889aea 11223344")


def test_the_sender_reads_back_as_it_wrote() -> None:
    sender = RtpSender(8, 160, seed=b"\x00" * 4 + b"\x00\x10" + b"\x00\x00\x00\x00" + b"extra")
    packets = [wire.parse(sender.packet(bytes([i]) * 160)) for i in range(5)]
    assert [p.sequence for p in packets if p] == [16, 17, 18, 19, 20]
    assert [p.timestamp for p in packets if p] == [0, 160, 320, 480, 640]
    assert [p.marker for p in packets if p] == [True, False, False, False, False]
    assert {p.payload_type for p in packets if p} == {8}
    assert [p.payload[0] for p in packets if p] == [0, 1, 2, 3, 4]
    assert sender.payload_type == 8


def test_sequence_and_timestamp_wrap_around() -> None:
    seed = b"\x00\x00\x00\x01" + b"\xff\xfe" + (0xFFFFFFFF - 200).to_bytes(4, "big")
    sender = RtpSender(0, 160, seed=seed)
    got = [wire.parse(sender.packet(PAYLOAD)) for _ in range(4)]
    assert [p.sequence for p in got if p] == [65534, 65535, 0, 1]
    assert [p.timestamp for p in got if p] == [
        0xFFFFFFFF - 200,
        0xFFFFFFFF - 40,
        119,  # (2**32 - 41 + 160) mod 2**32
        279,
    ]


def test_a_sender_needs_ten_random_bytes() -> None:
    with pytest.raises(ValueError, match="10 random bytes"):
        RtpSender(0, 160, seed=b"\x00" * 9)


def test_leg_format_and_payload_types() -> None:
    assert wire.leg_format(ULAW) is ULAW
    assert wire.leg_format(ALAW) is ALAW
    assert wire.leg_format(SLIN16) is ULAW  # Asterisk drops 16 kHz linear from voicedock
    assert wire.leg_format(SLIN) is ULAW
    assert wire.payload_type(ULAW) == 0
    assert wire.payload_type(ALAW) == 8
    with pytest.raises(ValueError, match="slin16"):
        wire.payload_type(SLIN16)
    assert wire.COMFORT_NOISE == 13
    assert wire.HEADER == 12
