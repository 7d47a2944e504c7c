from __future__ import annotations

import itertools

import numpy as np
import pytest

from voicedock.media.codecs import Resampler
from voicedock.pipeline.audio import (
    PcmStream,
    float_to_pcm16,
    pcm16_to_float,
    resample_pcm16,
    rms_dbfs,
)
from voicedock.pipeline.text import SentenceBuffer, first_words, split_sentences

pytestmark = pytest.mark.unit


def test_sentence_buffer_emits_complete_sentences_only() -> None:
    buf = SentenceBuffer()
    assert buf.push("Hello there") == []
    assert buf.push(". How are") == ["Hello there."]
    assert buf.push(" you? I am") == ["How are you?"]
    assert buf.flush() == ["I am"]
    assert buf.flush() == []


def test_long_sentences_split_at_commas() -> None:
    text = ", ".join(["alpha beta gamma delta epsilon"] * 8) + "."
    parts = split_sentences(text)
    assert len(parts) > 1
    assert all(len(p) <= 120 for p in parts)
    assert " ".join(parts).replace(",", "") == text.replace(",", "")


def test_first_words() -> None:
    assert first_words("one two three four", 0.5) == "one two"
    assert first_words("one two three four", 0.0) == ""
    assert first_words("one two", 1.0) == "one two"


def tone(freq: float, rate: int, seconds: float = 0.5) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return float_to_pcm16(0.5 * np.sin(2 * np.pi * freq * t))


def peak_hz(pcm: bytes, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm16_to_float(pcm)))
    return float(np.fft.rfftfreq(len(pcm) // 2, 1 / rate)[int(np.argmax(spectrum))])


def test_resample_keeps_in_band_tone_and_removes_out_of_band() -> None:
    src = tone(1000, 22050)
    out = resample_pcm16(src, 22050, 8000)
    assert len(out) // 2 == int(22050 * 0.5) * 8000 // 22050
    assert abs(peak_hz(out, 8000) - 1000) < 5
    assert rms_dbfs(out) > -10
    # 6 kHz cannot exist at 8 kHz: it must be filtered, not aliased to 2 kHz
    assert rms_dbfs(resample_pcm16(tone(6000, 22050), 22050, 8000)) < -30


def test_resample_up_and_identity() -> None:
    src = tone(440, 8000)
    assert resample_pcm16(src, 8000, 8000) is src
    assert abs(peak_hz(resample_pcm16(src, 8000, 16000), 16000) - 440) < 5
    assert rms_dbfs(b"\x00\x00" * 10) == float("-inf")


def test_a_pcm_stream_cut_anywhere_joins_as_if_converted_whole() -> None:
    """Deltas of odd byte counts (a provider's audio cut anywhere): the odd byte and the
    filter's history carry over, so the pieces, with what ``end`` gives, are the whole signal
    converted at once: as many samples, none more than a rounding step apart."""
    src = tone(440, 24000, seconds=0.2)
    samples = np.frombuffer(src, dtype="<i2")
    at_once = Resampler(24000, 8000, aligned=True)
    whole = np.concatenate((at_once.process(samples), at_once.flush())).tobytes()
    stream = PcmStream(24000, 8000)
    cuts = [0, 1, 4, 333, 1000, 1001, 4096, len(src)]
    pieces = b"".join(stream.convert(src[a:b]) for a, b in itertools.pairwise(cuts))
    assert pieces + stream.end() == whole
    one_shot = np.frombuffer(resample_pcm16(src, 24000, 8000), dtype="<i2").astype(int)
    assert len(one_shot) == len(whole) // 2 == len(samples) // 3
    assert np.abs(np.frombuffer(whole, dtype="<i2") - one_shot).max() <= 1


def test_a_voice_streamed_in_pieces_has_no_seam_where_it_was_cut() -> None:
    """A synthesis answer read in pieces (200 ms, as a streaming voice sends them), each
    converted to the call's rate as it comes: the joins are as smooth as the rest."""
    src = tone(440, 24000, seconds=1.0)
    step = 24000 * 2 // 5
    stream = PcmStream(24000, 8000)
    pieces = b"".join(stream.convert(src[i : i + step]) for i in range(0, len(src), step))
    joined = np.frombuffer(pieces + stream.end(), dtype="<i2").astype(int)
    whole = np.frombuffer(resample_pcm16(src, 24000, 8000), dtype="<i2").astype(int)
    assert len(joined) == len(whole)
    assert np.abs(joined - whole)[16:-16].max() <= 1  # inside the signal's own edges
    same_rate = PcmStream(8000, 8000)
    assert same_rate.convert(b"\x01") == b""
    assert same_rate.convert(b"\x02\x03") == b"\x01\x02"


def test_level_of_a_frame_in_dbfs() -> None:
    # A sine's RMS is its amplitude / sqrt(2); a full-scale square wave is 0 dBFS.
    sine = (16384 * np.sin(2 * np.pi * 400 * np.arange(160) / 8000)).astype("<i2").tobytes()
    assert abs(rms_dbfs(sine) - 20 * np.log10(16384 / np.sqrt(2) / 32768)) < 0.01
    square = np.tile(np.array([-32768, 32767], dtype="<i2"), 80).tobytes()
    assert abs(rms_dbfs(square)) < 0.001
    assert rms_dbfs(b"") == float("-inf")
