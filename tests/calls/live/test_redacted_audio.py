"""The stretches of a call silenced in its recording for what a redaction plan hid
(``calls/live/redacted_audio.py``): the hidden words' by the recognizer's word times, the
whole message's where none are told."""

from __future__ import annotations

import pytest

from voicedock.calls.live.redacted_audio import (
    MESSAGE_MARGIN_S,
    WORD_MARGIN_S,
    Stretch,
    hidden_spans,
    redacted_stretches,
)
from voicedock.domain.redaction import Redactor
from voicedock.errors import ProviderError
from voicedock.pipeline.frames import HeardAudio, TranscriptEntry
from voicedock.pipeline.providers.base import SpokenWord

pytestmark = pytest.mark.unit

CARD = Redactor(["card_number"])
HEARD = 1_000.0  # when the message's audio starts (UNIX time)
# What the caller said, as a recognizer aligns it: a word every 0.5 s, 0.3 s long.
SENTENCE = (
    "My card number is four five three nine, one four eight eight, zero three four three, "
    "six four six seven. Thank you."
)
SAID = SENTENCE.split()
KEPT = "My card number is [card_number]. Thank you."  # the message as stored
WORDS = [SpokenWord(f" {word}", 0.5 * i, 0.5 * i + 0.3) for i, word in enumerate(SAID)]


class Aligner:
    """An STT that tells word times: ``words``, or the error it raises."""

    def __init__(self, words: list[SpokenWord] | Exception) -> None:
        self.words, self.asked = words, 0

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        return ""

    async def word_times(self, pcm: bytes, sample_rate: int) -> list[SpokenWord]:
        self.asked += 1
        if isinstance(self.words, Exception):
            raise self.words
        return self.words

    async def aclose(self) -> None:
        return None


class TextOnly:
    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        return ""

    async def aclose(self) -> None:
        return None


def message(*, audio: bool = True, redacted: bool = True) -> TranscriptEntry:
    entry = TranscriptEntry("user", KEPT, HEARD, 1_008.0)
    entry.redacted = redacted
    entry.audio = HeardAudio(b"\x00\x00" * 8000, 8000, HEARD, HEARD + 12.0) if audio else None
    return entry


def test_the_words_a_match_covers_give_its_times() -> None:
    ((start, end),) = hidden_spans(WORDS, CARD, 12.0, KEPT)
    assert start == pytest.approx(0.5 * 4 - WORD_MARGIN_S)  # "four", the fifth word
    assert end == pytest.approx(0.5 * 20)  # up to "Thank", after "seven."


def test_the_last_words_said_are_silenced_to_the_audios_end() -> None:
    ((_, end),) = hidden_spans(WORDS[:20], CARD, 12.0, KEPT)  # "... six four six seven."
    assert end == 12.0


def test_words_are_read_as_the_engine_joins_them() -> None:
    """Whisper writes "4539-1488-0343-6467." as four words, three of them going on the one
    before."""
    groups = ["4539", "-1488", "-0343", "-6467."]
    words = [SpokenWord(" My", 0.0, 0.1), SpokenWord(" card", 0.1, 0.4)]
    words += [SpokenWord(g if i else f" {g}", 1.0 + i, 1.9 + i) for i, g in enumerate(groups)]
    words.append(SpokenWord(" Thanks.", 5.5, 6.0))
    assert hidden_spans(words, CARD, 6.0, KEPT) == [(1.0 - WORD_MARGIN_S, 5.5)]


def test_words_missing_a_detail_the_message_hides_give_no_span() -> None:
    """The message hid two card numbers; the words heard again hold one: the whole message is
    silenced rather than the one."""
    kept = "My card number is [card_number], or [card_number]. Thank you."
    assert hidden_spans(WORDS, CARD, 12.0, kept) == []
    assert hidden_spans(WORDS, Redactor(["card_number", "email"]), 12.0, KEPT) != []


def test_words_with_nothing_to_hide_give_no_span() -> None:
    assert hidden_spans(WORDS[:4] + WORDS[-2:], CARD, 12.0, KEPT) == []


async def test_only_the_hidden_words_are_silenced() -> None:
    stt = Aligner(WORDS)
    entry = message()
    (stretch,) = await redacted_stretches([entry], stt, CARD, timeout_s=5)
    assert (stretch.start, stretch.end) == pytest.approx(
        (HEARD + 2.0 - WORD_MARGIN_S, HEARD + 10.0)
    )
    assert stretch.start > HEARD + 0.5 * 3 + 0.3  # "is" still heard
    assert stretch.end <= HEARD + 0.5 * 20  # "Thank" still heard
    assert stretch.counted_from == HEARD + 12.0  # counted back from the turn's last frame
    assert entry.audio is None  # let go once looked at


@pytest.mark.parametrize(
    "stt",
    [
        TextOnly(),  # no word times
        Aligner(ProviderError("alignment failed")),
        Aligner(WORDS[:4]),  # heard differently: nothing the redactor finds
        None,
    ],
)
async def test_without_the_words_times_the_whole_message_is_silenced(stt: object) -> None:
    stretches = await redacted_stretches([message()], stt, CARD, timeout_s=5)  # type: ignore[arg-type]
    assert stretches == [Stretch(HEARD - MESSAGE_MARGIN_S, 1_008.0 + MESSAGE_MARGIN_S)]


async def test_a_message_without_audio_or_not_redacted() -> None:
    stt = Aligner(WORDS)
    whole = await redacted_stretches([message(audio=False)], stt, CARD, timeout_s=5)
    assert whole == [Stretch(HEARD - MESSAGE_MARGIN_S, 1_008.0 + MESSAGE_MARGIN_S)]
    assert await redacted_stretches([message(redacted=False)], stt, CARD, timeout_s=5) == []
    assert stt.asked == 0
