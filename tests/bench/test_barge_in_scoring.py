"""The barge-in bench's scoring: false cuts, missed interruptions, pause and verdict times."""

from __future__ import annotations

import barge_in as bench
import pytest

from voicedock.pipeline.dialogue.words_decide import BargeInConfig

pytestmark = pytest.mark.unit

CONFIG = BargeInConfig(on_words=True)
# A backchannel that paused the assistant 240 ms into it; its turn ended at 900 ms and
# Whisper took 400 ms to write "Mm-hm.", 300 ms of it pitched.
MM_HM = bench.Heard("mm-hm", "backchannel", "en", "clean", 240, 900, 400, "Mm-hm.", 300)
# Real words: paused 260 ms in, turn ended at 1,800 ms, transcribed in 500 ms.
QUESTION = bench.Heard(
    "question", "words", "en", "clean", 260, 1800, 500, "Sorry, one more question.", 700
)


def test_off_every_pause_is_a_cut_decided_at_once() -> None:
    score = bench.score([MM_HM, QUESTION], on_words=False, config=CONFIG)
    assert (score.items, score.false_cuts, score.missed, score.paused) == (2, 1, 0, 2)
    assert score.pause_ms == (260,)
    assert score.verdict_ms == (260,)
    assert score.held_ms == ()


def test_on_the_backchannel_goes_on_and_the_words_cut_once_transcribed() -> None:
    score = bench.score([MM_HM, QUESTION], on_words=True, config=CONFIG)
    assert (score.false_cuts, score.missed, score.paused) == (0, 0, 2)
    assert score.pause_ms == (260,)
    assert score.verdict_ms == (1800 + 500,)
    assert score.held_ms == (900 + 400 - 240,)  # silent while held


def test_on_a_misheard_or_unpitched_sound_is_counted_as_it_is_judged() -> None:
    misheard = bench.Heard("mm-hm", "backchannel", "en", "echo", 240, 900, 400, "and the mace", 300)
    cough = bench.Heard("cough", "noise", "en", "clean", 240, 800, 300, "I", 0)
    unheard = bench.Heard("wait", "words", "en", "clean", None)
    score = bench.score([misheard, cough, unheard], on_words=True, config=CONFIG)
    assert score.false_cuts == 1  # the misheard backchannel; the cough has no pitch
    assert score.missed == 1  # words that never paused the assistant
    assert score.held_ms == (800 + 300 - 240,)
