"""The AudioSocket codec byte for byte: messages written, a stream cut into messages however its
pieces arrive, a stream breaking the framing, the leg's format and the audio kinds."""

from __future__ import annotations

import uuid

import pytest

from voicedock.domain.audio import ALAW, SLIN, SLIN16, ULAW
from voicedock.pbx.asterisk.media.audiosocket import wire
from voicedock.pbx.asterisk.media.audiosocket.wire import Message, MessageReader

pytestmark = pytest.mark.unit

LEG = uuid.UUID("0b4c7e3a-5f1d-4c2b-9a8e-7d6f5e4d3c2b")
STREAM = (
    b"\x01\x00\x10" + LEG.bytes  # the leg's UUID
    + b"\x10\x00\x04\x01\x02\x03\x04"  # audio
    + b"\x03\x00\x01" + b"5"  # a key
    + b"\x10\x00\x00"  # empty audio
    + b"\x00\x00\x00"  # hang-up
)  # fmt: skip
MESSAGES = [
    Message(0x01, LEG.bytes),
    Message(0x10, b"\x01\x02\x03\x04"),
    Message(0x03, b"5"),
    Message(0x10, b""),
    Message(0x00, b""),
]


def test_encode_and_hangup() -> None:
    assert wire.encode(0x10, b"\x01\x02") == b"\x10\x00\x02\x01\x02"
    assert wire.encode(0x12, bytes(640))[:3] == b"\x12\x02\x80"
    assert wire.encode(wire.KIND_DTMF, b"#") == b"\x03\x00\x01#"
    assert wire.hangup() == b"\x00\x00\x00"
    assert wire.encode(0x10, bytes(0xFFFF))[:3] == b"\x10\xff\xff"
    with pytest.raises(ValueError, match="65535"):
        wire.encode(0x10, bytes(0x10000))


def test_uuid_of_the_first_message() -> None:
    assert wire.uuid_of(LEG.bytes) == "0b4c7e3a-5f1d-4c2b-9a8e-7d6f5e4d3c2b"
    assert wire.uuid_of(LEG.bytes[:15]) is None
    assert wire.uuid_of(LEG.bytes + b"\x00") is None
    assert wire.uuid_of(b"") is None


def test_several_messages_in_one_chunk() -> None:
    reader = MessageReader()
    assert reader.feed(STREAM) == MESSAGES
    assert reader.pending == 0
    assert not reader.broken


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_a_stream_cut_at_any_byte(cut: int) -> None:
    reader = MessageReader()
    got = reader.feed(STREAM[:cut])
    assert reader.pending == cut - sum(3 + len(m.payload) for m in got)
    got += reader.feed(STREAM[cut:])
    assert got == MESSAGES
    assert reader.pending == 0


def test_a_stream_a_byte_at_a_time() -> None:
    reader = MessageReader()
    got: list[Message] = []
    for i in range(len(STREAM)):
        got += reader.feed(STREAM[i : i + 1])
    assert got == MESSAGES
    assert reader.feed(b"") == []


def test_a_length_over_the_limit_breaks_the_stream() -> None:
    reader = MessageReader(max_payload=320)
    good = wire.encode(0x10, bytes(320))
    assert reader.feed(good) == [Message(0x10, bytes(320))]
    # What came before the bad header in the same chunk is still read.
    got = reader.feed(good + b"\x10\x01\x41" + bytes(10))
    assert got == [Message(0x10, bytes(320))]
    assert reader.broken
    assert reader.pending == 0
    assert reader.feed(good) == []  # nothing more, even whole messages
    assert reader.broken


def test_a_bad_length_is_seen_from_its_header_alone() -> None:
    reader = MessageReader(max_payload=4096)
    assert reader.feed(b"\x10\x10") == []
    assert not reader.broken
    assert reader.feed(b"\x01") == []  # 4097 bytes announced
    assert reader.broken


def test_leg_format_and_audio_kinds() -> None:
    for call_format in (ULAW, ALAW, SLIN, SLIN16):
        assert wire.leg_format(call_format) is SLIN
    assert wire.audio_kind(SLIN) == 0x10
    assert wire.audio_kind(SLIN16) == 0x12
    assert wire.AUDIO_KINDS[0x10] is SLIN
    with pytest.raises(ValueError, match="ulaw"):
        wire.audio_kind(ULAW)
