"""The turn-taking corpus: the same items for the same seed, and labels where the speech is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import turn_corpus as corpus

pytestmark = pytest.mark.unit


def tone(ms: int, lead_ms: int = 120, tail_ms: int = 200) -> bytes:
    """A 300 Hz tone of ``ms`` between silences, as a voice's output with its own margins."""
    rate = corpus.RATE
    t = np.arange(rate * ms // 1000) / rate
    body = (0.3 * 32767 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()
    return bytes(2 * rate * lead_ms // 1000) + body + bytes(2 * rate * tail_ms // 1000)


def by_length(_voice: corpus.Voice, text: str) -> bytes:
    return tone(40 * len(text))


def test_the_same_seed_gives_the_same_items_over_both_languages_and_every_kind() -> None:
    items = corpus.specs(seed=47, per_voice=6)
    assert items == corpus.specs(seed=47, per_voice=6)
    assert items != corpus.specs(seed=48, per_voice=6)
    assert {s.voice.language for s in items} == {"en", "de"}
    assert {s.voice.engine for s in items} == {"piper", "espeak"}
    assert {s.kind for s in items} == set(corpus.KINDS)
    assert len({s.key for s in items}) == len(items)
    for spec in items:
        pauses = [s.pause_after_ms for s in spec.segments]
        assert pauses[-1] == 0
        assert all(300 <= p <= 1500 for p in pauses[:-1])
        assert (len(spec.segments) == 1) == (spec.kind == "complete")


def test_the_labels_are_the_trimmed_speech_joined_by_the_pauses() -> None:
    spec = corpus.ItemSpec(
        "x",
        "filler",
        corpus.VOICES[0],
        (corpus.Segment("I would like", 700), corpus.Segment("uh", 420), corpus.Segment("ok.", 0)),
    )
    item = corpus.assemble(spec, [by_length(spec.voice, s.text) for s in spec.segments])
    lengths = [40 * len(s.text) for s in spec.segments]
    first = corpus.LEAD_MS
    assert item.spans[0][0] == first
    assert [b - a for a, b in item.spans] == pytest.approx(lengths, abs=10)
    assert [b - a for a, b in item.pauses] == pytest.approx([700, 420], abs=10)
    assert item.end_ms == item.spans[-1][1]
    assert item.duration_ms == pytest.approx(item.end_ms + corpus.TAIL_MS, abs=1)
    pcm = np.frombuffer(item.pcm, dtype="<i2")
    per_ms = corpus.RATE // 1000
    after = pcm[(item.end_ms + 20) * per_ms :]
    assert not after.any()  # the turn really ends there: nothing but silence after it
    inside = pcm[(item.end_ms - 30) * per_ms : item.end_ms * per_ms]
    assert np.abs(inside).max() > 5000


def test_speech_bounds_of_silence_is_empty() -> None:
    assert corpus.speech_bounds(bytes(1600)) == (0, 0)
    assert corpus.speech_bounds(tone(500, 100, 100)) == pytest.approx((800, 4800), abs=80)


def test_a_built_corpus_is_read_back_from_its_cache(tmp_path: Path) -> None:
    items = corpus.specs(per_voice=2)[:3]
    first = corpus.build(tmp_path, items, by_length)

    def refuse(_voice: corpus.Voice, _text: str) -> bytes:
        raise AssertionError("synthesized again")

    again = corpus.build(tmp_path, items, refuse)
    assert [i.pcm for i in again] == [i.pcm for i in first]
    assert [i.spans for i in again] == [i.spans for i in first]


def test_one_utterance_is_cut_at_the_quiet_moment_where_the_first_words_end() -> None:
    rate = corpus.RATE
    loud = np.frombuffer(tone(900, 0, 0), dtype="<i2")
    dip = (loud[: rate // 20] // 50).astype("<i2")  # 50 ms, 34 dB down: between two words
    whole = bytes(800) + loud.tobytes() + dip.tobytes() + loud.tobytes() + bytes(800)
    alone = tone(1000)  # the first words alone: drawn out, a little longer
    first, rest = corpus.cut(whole, [alone])
    assert len(first) / 2 / rate == pytest.approx(0.925, abs=0.03)
    assert len(rest) / 2 / rate == pytest.approx(0.925, abs=0.03)
    assert first + rest == whole[800 : len(whole) - 800]
