"""Websocket frames built for the media clock, byte for byte, and the writer's guards."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from voicedock.errors import MediaError
from voicedock.pbx.asterisk.media.frame_writer import FrameWriter
from voicedock.pbx.asterisk.media.websocket_wire import OP_BINARY, OP_TEXT, encode_frame

pytestmark = pytest.mark.unit


def test_short_text_frame() -> None:
    assert encode_frame(b"MARK_MEDIA vd:1", OP_TEXT) == b"\x81\x0fMARK_MEDIA vd:1"


def test_a_ulaw_frame_takes_the_16_bit_length() -> None:
    payload = bytes(range(160))
    assert encode_frame(payload, OP_BINARY) == b"\x82\x7e\x00\xa0" + payload


def test_a_client_frame_is_masked_with_its_key() -> None:
    payload = bytes(range(160))
    mask = b"\x01\x02\x03\x04"
    frame = encode_frame(payload, OP_BINARY, mask)
    assert frame[:4] == b"\x82\xfe\x00\xa0"  # the mask bit set
    assert frame[4:8] == mask
    unmasked = bytes(b ^ mask[i % 4] for i, b in enumerate(frame[8:]))
    assert unmasked == payload


def test_a_mask_is_four_bytes() -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        encode_frame(b"x", OP_BINARY, b"\x00")


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closing = False
        self.buffered = 0

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered


def fake_ws(transport: Transport, *, use_mask: bool) -> SimpleNamespace:
    return SimpleNamespace(
        closed=False, _writer=SimpleNamespace(transport=transport, use_mask=use_mask)
    )


def test_a_visit_is_one_write_with_audio_joined_and_marks_in_place() -> None:
    transport = Transport()
    writer = FrameWriter(fake_ws(transport, use_mask=False))  # type: ignore[arg-type]
    a, b, c = b"\x01" * 160, b"\x02" * 160, b"\x03" * 160
    writer.binary(a)
    writer.binary(b)
    writer.text("MARK_MEDIA vd:1")
    writer.binary(c)
    assert transport.written == []  # collected until flushed
    writer.flush()
    assert transport.written == [
        encode_frame(a + b, OP_BINARY)
        + encode_frame(b"MARK_MEDIA vd:1", OP_TEXT)
        + encode_frame(c, OP_BINARY)
    ]
    writer.flush()
    assert len(transport.written) == 1  # nothing collected: nothing written


def test_masked_messages_get_a_fresh_key_each() -> None:
    transport = Transport()
    writer = FrameWriter(fake_ws(transport, use_mask=True))  # type: ignore[arg-type]
    for _ in range(4):
        writer.binary(b"\xff" * 160)
        writer.flush()
    keys = {frame[4:8] for frame in transport.written}
    assert len(keys) > 1
    assert all(frame[:4] == b"\x82\xfe\x00\xa0" for frame in transport.written)


def test_congestion_and_closing_are_reported() -> None:
    transport = Transport()
    ws = fake_ws(transport, use_mask=False)
    writer = FrameWriter(ws, high_water=1000)  # type: ignore[arg-type]
    assert not writer.is_congested()
    transport.buffered = 1001
    assert writer.is_congested()
    ws.closed = True
    writer.text("MARK_MEDIA x")
    with pytest.raises(ConnectionResetError):
        writer.flush()
    ws.closed = False
    transport.closing = True
    writer.binary(b"\x00" * 160)
    with pytest.raises(ConnectionResetError):
        writer.flush()
    assert transport.written == []
    transport.closing = False
    writer.flush()
    assert transport.written == []  # what a closed connection refused is not sent later


def test_a_websocket_without_a_transport_is_refused() -> None:
    with pytest.raises(MediaError):
        FrameWriter(SimpleNamespace(closed=False, _writer=None))  # type: ignore[arg-type]
