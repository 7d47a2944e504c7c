"""G.711 against the reference vectors, format properties and the streaming resampler."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from voicedock.domain import audio
from voicedock.domain.audio import ALAW, SLIN16, ULAW
from voicedock.media import codecs
from voicedock.media.codecs import Resampler

pytestmark = pytest.mark.unit

# Vectors from CPython's test_audioop (16-bit width), which checks the Sun reference g711.c.
LINEAR = struct.pack("<7h", 0, 0x1234, 0x4567, -0x4567, 0x7FFF, -0x8000, -1)
ULAW_OF_LINEAR = b"\xff\xad\x8e\x0e\x80\x00\x7e"
ALAW_OF_LINEAR = b"\xd5\x87\xa4\x24\xaa\x2a\x55"

ULAW_CODES = bytes.fromhex("000e283f576a767c7e7f808ea8bfd7eaf6fcfeff")
ULAW_VALUES = [-8031, -4447, -1471, -495, -163, -53, -18, -6, -2, 0]
ULAW_VALUES = [4 * v for v in ULAW_VALUES + [-v for v in ULAW_VALUES]]

ALAW_CODES = bytes.fromhex("0003242a515455586b717f8083a4aad1d4d5d8ebf1ff")
ALAW_BASE = [688, 720, 2240, 4032, 9, 3, 1, 27, 244, 82, 106]
ALAW_VALUES = [-8 * v for v in ALAW_BASE] + [8 * v for v in ALAW_BASE]


def test_ulaw_encode_matches_reference_vectors() -> None:
    assert codecs.ulaw_encode(LINEAR) == ULAW_OF_LINEAR


def test_alaw_encode_matches_reference_vectors() -> None:
    assert codecs.alaw_encode(LINEAR) == ALAW_OF_LINEAR


def test_ulaw_decode_matches_reference_vectors() -> None:
    assert codecs.ulaw_decode(ULAW_CODES).tolist() == ULAW_VALUES


def test_alaw_decode_matches_reference_vectors() -> None:
    assert codecs.alaw_decode(ALAW_CODES).tolist() == ALAW_VALUES


def test_well_known_code_points() -> None:
    assert codecs.ulaw_decode(b"\x00\x80\xff\x7f").tolist() == [-32124, 32124, 0, 0]
    assert codecs.alaw_decode(b"\xd5\x55\x2a\xaa").tolist() == [8, -8, -32256, 32256]


def test_every_ulaw_code_round_trips_except_negative_zero() -> None:
    codes = bytes(range(127)) + bytes(range(128, 256))  # 0x7f and 0xff both decode to 0
    assert codecs.ulaw_encode(codecs.ulaw_decode(codes)) == codes


def test_every_alaw_code_round_trips() -> None:
    codes = bytes(range(256))
    assert codecs.alaw_encode(codecs.alaw_decode(codes)) == codes


def test_encode_accepts_int16_arrays_and_bytes_alike() -> None:
    samples = np.array([0, 1000, -1000, 32767, -32768], dtype=np.int16)
    assert codecs.ulaw_encode(samples) == codecs.ulaw_encode(samples.tobytes())
    assert codecs.encode(ALAW, samples) == codecs.alaw_encode(samples)
    assert codecs.encode(SLIN16, samples) == samples.astype("<i2").tobytes()


def test_companding_error_is_bounded_relative_to_magnitude() -> None:
    samples = np.arange(-32768, 32768, 7, dtype=np.int16)
    for fmt in (ULAW, ALAW):
        decoded = codecs.decode(fmt, codecs.encode(fmt, samples)).astype(np.int32)
        error = np.abs(decoded - samples.astype(np.int32))
        assert np.all(error <= np.maximum(np.abs(samples.astype(np.int32)) // 16, 16) + 8)


def test_silence_bytes_decode_to_near_zero() -> None:
    assert codecs.ulaw_decode(bytes([ULAW.silence_byte])).tolist() == [0]
    assert abs(int(codecs.alaw_decode(bytes([ALAW.silence_byte]))[0])) <= 8


@pytest.mark.parametrize(
    ("fmt", "frame_bytes"), [(ULAW, 160), (ALAW, 160), (audio.SLIN, 320), (SLIN16, 640)]
)
def test_frame_sizes_match_asterisk_optimal_frame_size(
    fmt: audio.AudioFormat, frame_bytes: int
) -> None:
    assert fmt.frame_bytes() == frame_bytes
    assert fmt.duration_ms(frame_bytes) == 20.0
    assert audio.format_by_name(fmt.name) is fmt


def test_unknown_format_name_is_none() -> None:
    assert audio.format_by_name("opus") is None


def _tone(freq: float, rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * freq * t) * 10000).astype(np.int16)


RATE_PAIRS = [
    (8000, 16000),
    (16000, 8000),
    (16000, 24000),
    (24000, 16000),
    (22050, 16000),
    (22050, 8000),
    (24000, 8000),
    (8000, 22050),
]


@pytest.mark.parametrize(("src", "dst"), RATE_PAIRS)
def test_resampled_tone_matches_ideal_signal_after_filter_delay(src: int, dst: int) -> None:
    resampler = Resampler(src, dst)
    out = resampler.process(_tone(1000, src))
    assert abs(len(out) - dst) <= 1
    t = np.arange(len(out)) / dst - resampler.delay_seconds
    ideal = np.sin(2 * np.pi * 1000 * t) * 10000
    settled = slice(200, len(out) - 50)
    assert np.max(np.abs(out[settled] - ideal[settled])) < 60  # < 0.6 % of amplitude


@pytest.mark.parametrize(("src", "dst"), RATE_PAIRS)
def test_streaming_in_20ms_chunks_equals_one_shot(src: int, dst: int) -> None:
    tone = _tone(700, src)
    streaming = Resampler(src, dst)
    step = src // 50
    chunks = [streaming.process(tone[i : i + step]) for i in range(0, len(tone), step)]
    assert np.array_equal(np.concatenate(chunks), codecs.resample(tone, src, dst))


@pytest.mark.parametrize(("src", "dst"), RATE_PAIRS)
def test_a_whole_signal_is_resampled_in_line_with_its_input(src: int, dst: int) -> None:
    signal = _tone(1000, src).astype(np.float32)
    out = codecs.resample_signal(signal, src, dst)
    assert out.dtype == np.float32
    assert len(out) == len(signal) * dst // src  # the tail is flushed, not held back
    offset = Resampler(src, dst).signal_offset_seconds
    assert offset <= 0.5 / src
    t = np.arange(len(out)) / dst - offset
    ideal = np.sin(2 * np.pi * 1000 * t) * 10000
    settled = slice(50, len(out) - 50)
    assert np.max(np.abs(out[settled] - ideal[settled])) < 60  # < 0.6 % of amplitude


def test_a_whole_signal_at_its_own_rate_is_a_copy() -> None:
    signal = _tone(440, 8000, 0.02).astype(np.float32)
    out = codecs.resample_signal(signal, 8000, 8000)
    assert np.array_equal(out, signal)
    assert out is not signal
    assert codecs.resample_signal(np.zeros(0, np.float32), 8000, 16000).size == 0


@pytest.mark.parametrize(("src", "dst"), [(16000, 8000), (24000, 16000), (22050, 16000)])
def test_downsampling_suppresses_content_above_new_nyquist(src: int, dst: int) -> None:
    tone = _tone(dst / 2 + 600, src)
    out = Resampler(src, dst).process(tone)[200:].astype(np.float64)
    rms = float(np.sqrt(np.mean(out**2)))
    assert rms < 7071 * 10 ** (-50 / 20)  # at least 50 dB down


def test_same_rate_is_identity_copy() -> None:
    tone = _tone(440, 8000, 0.02)
    out = Resampler(8000, 8000).process(tone)
    assert np.array_equal(out, tone)
    assert out is not tone


def test_loud_input_clips_instead_of_wrapping() -> None:
    square = np.tile(np.array([32767] * 8 + [-32768] * 8, dtype=np.int16), 200)
    out = Resampler(8000, 16000).process(square)
    assert out.dtype == np.int16
    assert out.max() == 32767  # Gibbs overshoot saturates, never wraps negative
    assert out.min() == -32768


def test_reset_restarts_the_stream() -> None:
    tone = _tone(440, 16000, 0.1)
    resampler = Resampler(16000, 8000)
    first = resampler.process(tone)
    resampler.reset()
    assert np.array_equal(resampler.process(tone), first)


def test_invalid_rates_are_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        Resampler(0, 8000)


def test_every_call_media_format_a_trunk_or_assistant_names_can_be_opened() -> None:
    # A trunk's codec and an assistant's media_format take these names; the media path must
    # know each (a name missing from FORMATS would only fail when a call's media opens).
    assert audio.CALL_MEDIA_FORMATS == ("ulaw", "alaw", "slin16")
    for name in audio.CALL_MEDIA_FORMATS:
        assert audio.format_by_name(name) is not None


@pytest.mark.parametrize(("src", "dst"), [(16000, 8000), (24000, 8000), (48000, 8000)])
def test_integer_decimation_is_the_filter_applied_at_every_nth_sample(src: int, dst: int) -> None:
    # Its own tight path (one convolution): still y[i] = sum_k h[k] x[down*i - k], chunk by
    # chunk in pieces of any length (a streaming voice's), as the general gather computes it.
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(7001) * 4000).astype(np.int16)
    resampler = Resampler(src, dst)
    h = resampler._bank[0].astype(np.float64)
    down = src // dst
    padded = np.concatenate((np.zeros(len(h) - 1), x.astype(np.float64)))
    expected = np.array(
        [padded[down * i + len(h) - 1 - np.arange(len(h))] @ h for i in range(-(-len(x) // down))]
    )
    cuts = np.cumsum(rng.integers(1, 900, size=40))
    chunks = np.split(x, cuts[cuts < len(x)])
    got = np.concatenate([resampler.process(c) for c in chunks])
    assert len(got) == len(expected)
    assert np.abs(got - np.clip(np.rint(expected), -32768, 32767)).max() <= 1


def test_a_ratio_s_filter_is_designed_once_and_shared_read_only() -> None:
    a, b = Resampler(24000, 8000), Resampler(24000, 8000)
    assert a._bank is b._bank
    assert not a._bank.flags.writeable
