"""What a company's phone line says before a person does, told from its words (PBX-neutral,
text only).

An assistant that calls a pharmacy, an insurer or a utility hears its line first: a menu
("For appointments, press 2."), announcements while it holds ("Your call is important to us.
Please stay on the line."), music or silence, then a person ("Good morning, Riverside Clinic,
Anna speaking."). ``line_says`` reads one utterance of it:

* ``menu``: it offers keys: a key word (``press``, ``dial``, ``push``, ``enter``, ``select``,
  ``option``) followed by a key (a digit in figures or words, star, pound, hash);
* ``hold``: the line's own announcements while it holds, and the marks a recognizer writes for
  music (``[Music]``, ``♪``);
* ``person``: anything else: someone speaks for themselves.

Words are compared as ``call_screening.words`` makes them (lower case, punctuation dropped).
"""

from __future__ import annotations

import itertools
from typing import Final, Literal

from voicedock.pipeline.hearing.call_screening import says, words

LineSays = Literal["menu", "hold", "person"]
MENU: Final = "menu"
HOLD: Final = "hold"
PERSON: Final = "person"

# Words that offer a key when one follows them ("press 2", "dial zero", "option one").
KEY_OFFERS: Final = frozenset({"press", "dial", "push", "enter", "select", "option", "key"})
KEYS: Final = frozenset(
    {
        *"0123456789",
        *("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
        *("star", "pound", "hash", "hashtag", "asterisk"),
    }
)
# What a line says while it holds the call (queues, transfers, hours).
HOLD_PHRASES: Final = (
    "please hold",
    "continue to hold",
    "remain on the line",
    "stay on the line",
    "your call is important",
    "your call is very important",
    "all of our",
    "all our agents",
    "all our representatives",
    "currently busy",
    "currently assisting",
    "currently helping",
    "next available",
    "estimated wait",
    "wait time",
    "thank you for holding",
    "thanks for holding",
    "thank you for waiting",
    "thank you for your patience",
    "in the queue",
    "in queue",
    "will be with you",
    "be right with you",
    "you are caller",
    "you are number",
    "transferring your call",
    "connecting your call",
    "please wait",
    "one moment please",
    "this call may be recorded",
    "this call may be monitored",
    "for quality and training",
    "for training and quality",
)
# A recognizer's marks for music it heard (Whisper writes them in brackets or as notes).
MUSIC_MARKS: Final = ("music", "musik", "musique")
_NOTES: Final = frozenset("♪♫♬🎵🎶")


def offers_keys(said: str) -> bool:
    """``said`` (as ``words`` made it) offers a key to press."""
    tokens = said.split()
    return any(
        token in KEY_OFFERS and following in KEYS for token, following in itertools.pairwise(tokens)
    )


def line_says(text: str) -> LineSays:
    """What ``text`` (an utterance of the line, transcribed) is: a menu, the line holding,
    or a person."""
    said = words(text)
    if offers_keys(said):
        return MENU
    if not said or any(mark in text for mark in _NOTES) or said in MUSIC_MARKS:
        return HOLD
    if says(said, HOLD_PHRASES):
        return HOLD
    return PERSON
