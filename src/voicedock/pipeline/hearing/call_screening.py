"""What a call-screening assistant says, told from its words (PBX-neutral, text only).

A phone's screening assistant answers an unknown caller before its owner does: Google's Call
Screen ("Hi, the person you're calling is using a screening service from Google and will get
a copy of this conversation. Go ahead and say your name and why you're calling."; Call Assist:
"... recording this call for the person you're trying to reach. Before I try to connect you,
can I ask what you're calling about?"), iOS call screening ("Hi, if you record your name and
reason for calling, I'll see if this person is available."). Acoustically it is a long
greeting, like an answering machine's; its words tell it apart:

* ``is_screening_prompt``: the screener's prompt, not a voicemail greeting (which asks for a
  message after the tone, and has no screener's phrase);
* ``screener_reply``: what the line says once the screener was answered: ``declined`` (the
  person is not available, do not call again), ``screener`` (the screener still talks: "please
  stay on the line") or ``person`` (anything else: the person picked up, "Hello, who is
  this?").

Words are compared lower case, punctuation aside, apostrophes kept out ("you're" → "youre").
"""

from __future__ import annotations

import re
from typing import Final, Literal

ScreenerReply = Literal["declined", "screener", "person"]
DECLINED: Final = "declined"
SCREENER: Final = "screener"
PERSON: Final = "person"

# Phrases only a screening assistant's prompt says (as words, see ``words``).
SCREENING_PHRASES: Final = (
    "screening service",
    "this call is being screened",
    "call is screened",
    "call assist",
    "record your name and reason",
    "your name and reason for calling",
    "say your name and why",
    "name and why youre calling",
    "ill see if this person is available",
    "see if this person is available",
    "ill see if they are available",
    "ill see if theyre available",
    "get a copy of this conversation",
    "recording this call for the person",
    "before i try to connect you",
    "can i ask what youre calling about",
    "state the purpose of your call",
    "state your name and the reason",
)
# A voicemail greeting's own words: a prompt that says one is a machine's, not a screener's.
VOICEMAIL_PHRASES: Final = (
    "leave a message",
    "leave your message",
    "leave your name and number",
    "after the tone",
    "after the beep",
    "record your message",
    "at the tone",
)
# The screener ends the call for its owner.
DECLINE_PHRASES: Final = (
    "not available",
    "isnt available",
    "is unavailable",
    "cant take your call",
    "cannot take your call",
    "cant come to the phone",
    "cannot come to the phone",
    "dont call again",
    "do not call again",
    "dont call this number",
    "do not call this number",
    "remove this number",
    "remove the number",
    "not interested",
    "call declined",
    "declined your call",
)
# The screener still speaks for its owner (the prompt again, or while it asks them).
HOLD_PHRASES: Final = (
    *SCREENING_PHRASES,
    "stay on the line",
    "please hold",
    "please wait",
    "one moment",
    "one second",
    "see if theyre available",
    "see if they are available",
    "trying to connect you",
    "connecting you",
    "can you tell me more",
    "is it urgent",
)

_NOT_WORD = re.compile(r"[^\w\s]+")


def words(text: str) -> str:
    """``text`` as its words: lower case, punctuation dropped (apostrophes with it), one space
    apart."""
    return " ".join(_NOT_WORD.sub("", text.lower().replace("-", " ")).split())


def says(said: str, phrases: tuple[str, ...]) -> bool:
    padded = f" {said} "
    return any(f" {phrase} " in padded for phrase in phrases)


def is_screening_prompt(text: str) -> bool:
    """``text`` (what answered the call) is a screening assistant's prompt."""
    said = words(text)
    return says(said, SCREENING_PHRASES) and not says(said, VOICEMAIL_PHRASES)


def screener_reply(text: str) -> ScreenerReply:
    """What ``text`` (said on the line after the screener was answered) is."""
    said = words(text)
    if says(said, DECLINE_PHRASES):
        return DECLINED
    if says(said, HOLD_PHRASES):
        return SCREENER
    return PERSON
