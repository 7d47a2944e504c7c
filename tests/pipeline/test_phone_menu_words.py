"""A company's line told from its words (``pipeline/hearing/phone_menu.py``): an utterance that
offers keys is a menu, the line's own announcements and a recognizer's marks for music are
hold, anything else is a person."""

from __future__ import annotations

import pytest

from voicedock.pipeline.hearing.phone_menu import HOLD, MENU, PERSON, line_says

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "heard"),
    [
        ("For appointments, press 2.", MENU),
        ("For billing press two, for anything else, press star.", MENU),
        ("To speak to an operator, dial zero.", MENU),
        ("Say 'pharmacy' or press option one.", MENU),
        ("Please enter 1 for English.", MENU),
        ("Please hold. Your call is important to us.", HOLD),
        ("All of our representatives are currently busy.", HOLD),
        ("You are caller number three in the queue.", HOLD),
        ("Thank you for holding.", HOLD),
        ("[Music]", HOLD),
        ("(music)", HOLD),
        ("♪ ♪", HOLD),
        ("", HOLD),
        ("Good morning, Riverside Clinic, this is Anna. How can I help you?", PERSON),
        ("Hello?", PERSON),
        ("Pharmacy, how can I help?", PERSON),
        # "press" without a key after it offers nothing: someone speaking of a press.
        ("This is the press office, Mark speaking.", PERSON),
    ],
)
def test_what_the_line_says(text: str, heard: str) -> None:
    assert line_says(text) == heard
