"""Framer: exact frames out of arbitrary chunks; silence per format."""

from __future__ import annotations

import pytest

from voicedock.domain.audio import ALAW, SLIN16, ULAW
from voicedock.media.framing import Framer, silence_frame

pytestmark = pytest.mark.unit


def test_silence_frames_per_format() -> None:
    assert silence_frame(ULAW) == b"\xff" * 160
    assert silence_frame(ALAW) == b"\xd5" * 160
    assert silence_frame(SLIN16) == b"\x00" * 640
    assert len(silence_frame(ULAW, 10)) == 80


def test_whole_frames_pass_straight_through() -> None:
    framer = Framer(160)
    data = bytes(range(160)) * 3
    frames = framer.push(data)
    assert frames == [data[0:160], data[160:320], data[320:480]]
    assert framer.pending == 0


def test_remainder_is_kept_and_completed_by_the_next_chunk() -> None:
    framer = Framer(160)
    stream = bytes(i % 251 for i in range(1000))
    out: list[bytes] = []
    for start in range(0, len(stream), 77):  # odd chunk size crosses every boundary
        out += framer.push(stream[start : start + 77])
    assert all(len(f) == 160 for f in out)
    assert b"".join(out) == stream[: 6 * 160]
    assert framer.pending == 1000 - 6 * 160


def test_short_chunks_produce_nothing_until_a_frame_is_complete() -> None:
    framer = Framer(640)
    assert framer.push(b"\x01" * 639) == []
    assert framer.push(b"\x02") == [b"\x01" * 639 + b"\x02"]
    assert framer.push(b"") == []


def test_flush_pads_the_last_partial_frame_with_format_silence() -> None:
    framer = Framer(ULAW.frame_bytes(20), pad_byte=ULAW.silence_byte)
    framer.push(b"\x10" * 200)
    last = framer.flush()
    assert last == b"\x10" * 40 + b"\xff" * 120
    assert framer.pending == 0
    assert framer.flush() is None


def test_clear_drops_the_remainder_and_reports_it() -> None:
    framer = Framer(SLIN16.frame_bytes(20), pad_byte=SLIN16.silence_byte)
    framer.push(b"\x00" * 700)
    assert framer.clear() == 60
    assert framer.flush() is None


def test_memoryview_and_bytearray_inputs() -> None:
    framer = Framer(4)
    assert framer.push(memoryview(b"abcdefgh")) == [b"abcd", b"efgh"]
    assert framer.push(bytearray(b"ij")) == []
    assert framer.push(memoryview(b"klmn")) == [b"ijkl"]


def test_frame_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Framer(0)
