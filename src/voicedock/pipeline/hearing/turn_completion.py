"""Does what the caller said so far read as a finished turn? The hint adaptive endpointing
waits on (``endpointing.py``): a pure function of the transcript's text.

Finished: the text ends a sentence (``.``, ``?``, ``!``) and its last word is not one that
leaves the thought open (a conjunction, a filler, an article or a preposition). Whisper
often closes even a trailing-off "so, um." with a full stop, so the last word counts more
than the punctuation. Unfinished: the last word leaves the thought open, or the text ends in
a comma, a dash or an ellipsis. Anything else (no text, no final punctuation) is unknown.
"""

from __future__ import annotations

import re

# Words after which a caller who pauses is still thinking.
OPEN_ENDINGS = frozenset(
    {
        "and", "or", "but", "so", "because", "if", "then", "that", "which", "when",
        "um", "umm", "uh", "uhm", "er", "erm", "hmm", "like",
        "the", "a", "an", "my", "your", "our", "to", "of", "for", "with", "on", "in", "at",
        "from", "about", "is", "are", "was", "i", "i'm", "we", "you",
    }
)  # fmt: skip
_LAST_WORD = re.compile(r"([\w']+)\W*$")
_SENTENCE_END = re.compile(r"[.?!][\"')\]]*$")
_TRAILING_OFF = re.compile(r"(,|-|—|…|\.\.\.)$")


def utterance_complete(text: str) -> bool | None:
    """True: a finished turn; False: it trails off; None: cannot tell."""
    text = text.strip()
    match = _LAST_WORD.search(text)
    if match is None:
        return None
    if match.group(1).lower() in OPEN_ENDINGS or _TRAILING_OFF.search(text):
        return False
    return True if _SENTENCE_END.search(text) else None
