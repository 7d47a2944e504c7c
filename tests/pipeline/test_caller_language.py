"""The caller's language per turn: a confident detection over enough words in a language the
assistant speaks switches the call; an unsure one, a one-word turn or a language not listed
leaves it where it was."""

from __future__ import annotations

import pytest

from voicedock.pipeline.hearing.language import (
    SWITCH_PROBABILITY,
    SWITCH_WORDS,
    CallerLanguage,
)
from voicedock.pipeline.providers.base import DetectedLanguage

pytestmark = pytest.mark.unit


def call() -> CallerLanguage:
    return CallerLanguage(default="en", spoken=frozenset({"de", "fr"}))


def test_a_confident_german_turn_switches_the_call_to_german() -> None:
    language = call()
    assert language.current == "en"
    assert language.heard(DetectedLanguage("de", 0.97), words=6) == "de"
    assert language.heard(None, words=4) == "de"  # a turn without a detection: as it was
    # back to the assistant's own
    assert language.heard(DetectedLanguage("en", 0.95), words=5) == "en"


@pytest.mark.parametrize(
    ("detected", "words"),
    [
        (DetectedLanguage("de", SWITCH_PROBABILITY - 0.01), 8),  # unsure
        (DetectedLanguage("de", 0.99), 1),  # "okay"
        (DetectedLanguage("de", 0.99), SWITCH_WORDS - 1),
        (DetectedLanguage("it", 0.99), 8),  # not a language the assistant speaks
    ],
)
def test_an_unsure_short_or_unlisted_detection_does_not_switch(
    detected: DetectedLanguage, words: int
) -> None:
    language = call()
    language.heard(DetectedLanguage("fr", 0.9), words=5)
    assert language.heard(detected, words) == "fr"
