"""How a document's text is cut into retrieval chunks: whole paragraphs where they fit, never an
empty chunk or one over the limit, and each chunk led by its section's heading."""

from __future__ import annotations

import random

import pytest

from voicedock.knowledge.chunks import MAX_CHUNK_CHARS, chunk_text

pytestmark = pytest.mark.unit

WORDS = ["refill", "pharmacy", "desk", "two", "days", "Monday", "doctor", "signed", "form"]


def generated_text(seed: int) -> str:
    """Headings, short and long paragraphs, long sentences and the odd very long word."""
    rng = random.Random(seed)
    paragraphs = []
    for _ in range(rng.randint(5, 40)):
        if rng.random() < 0.2:
            paragraphs.append(" ".join(rng.choices(WORDS, k=rng.randint(1, 6))).title())
            continue
        sentences = []
        for _ in range(rng.randint(1, 15)):
            words = rng.choices(WORDS, k=rng.randint(1, 300 if rng.random() < 0.1 else 25))
            if rng.random() < 0.05:
                words.append("x" * rng.randint(100, 3000))
            sentences.append(" ".join(words) + rng.choice([".", "?", "!"]))
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)


def test_the_default_limit() -> None:
    assert MAX_CHUNK_CHARS == 1000
    text = "\n\n".join(["A sentence of a paragraph, some forty chars."] * 60)
    chunks = chunk_text(text)
    assert len(chunks) > 1
    assert all(len(chunk) <= 1000 for chunk in chunks)


def test_whole_paragraphs_are_packed_together_while_they_fit() -> None:
    text = "One is first.\n\nTwo is second.\n\nThree is third.\n\nFour is fourth."
    assert chunk_text(text, max_chars=35) == [
        "One is first.\n\nTwo is second.",
        "Three is third.\n\nFour is fourth.",
    ]
    assert chunk_text(text, max_chars=1000) == [text]


def test_a_long_paragraph_is_cut_at_sentence_ends() -> None:
    text = "Refills take two days. Is it urgent? Call the desk! Then wait."
    assert chunk_text(text, max_chars=40) == [
        "Refills take two days. Is it urgent?",
        "Call the desk! Then wait.",
    ]


def test_a_long_sentence_is_cut_at_spaces() -> None:
    text = "refills take two working days at the desk"
    chunks = chunk_text(text, max_chars=15)
    assert chunks == ["refills take", "two working", "days at the", "desk"]


def test_a_huge_word_is_cut_anywhere() -> None:
    assert chunk_text("a" * 25, max_chars=10) == ["a" * 10, "a" * 10, "a" * 5]


def test_a_heading_starts_a_chunk_and_leads_each_of_its_sections_chunks() -> None:
    text = (
        "Welcome to the pharmacy.\n\n"
        "Refills\n\n"
        "Refills take two working days. Bring the signed form.\n\n"
        "Ask at the desk."
    )
    assert chunk_text(text, max_chars=60) == [
        "Welcome to the pharmacy.",
        "Refills\nRefills take two working days.",
        "Refills\nBring the signed form.\n\nAsk at the desk.",
    ]


def test_headings_in_a_row_lead_their_section_together() -> None:
    text = "Billing\n\nRefunds\n\nA refund takes a week."
    assert chunk_text(text) == ["Billing\nRefunds\nA refund takes a week."]


def test_a_last_line_or_a_sentence_is_no_heading() -> None:
    assert chunk_text("Call us today.\n\nRefills take two days.\n\nThanks") == [
        "Call us today.\n\nRefills take two days.\n\nThanks"
    ]


def test_a_heading_too_long_to_carry_stays_as_text() -> None:
    text = "A rather long heading line\n\nShort text here."
    assert chunk_text(text, max_chars=30) == ["A rather long heading line", "Short text here."]


def test_no_text_no_chunk() -> None:
    assert chunk_text("") == []
    assert chunk_text(" \n\n \n") == []
    with pytest.raises(ValueError, match="at least 1"):
        chunk_text("text", max_chars=0)


@pytest.mark.parametrize("max_chars", [1, 7, 50, 200, 1000])
def test_every_chunk_fits_none_is_empty_and_no_word_is_lost(max_chars: int) -> None:
    for seed in range(10):
        text = generated_text(seed)
        chunks = chunk_text(text, max_chars=max_chars)
        assert chunks, seed
        assert all(chunk.strip() and len(chunk) <= max_chars for chunk in chunks), seed
        if max_chars >= 50:
            # A word is cut only where it cannot fit beside the heading (a third at most).
            kept = {word for chunk in chunks for word in chunk.split()}
            assert {w for w in text.split() if len(w) <= max_chars // 2} <= kept, seed
        assert chunk_text(text, max_chars=max_chars) == chunks, seed
