"""The words a caller says while listening ("mm-hm", "yeah", "genau"): backchannels, by
language. With barge-in on words (``pipeline/dialogue/words_decide.py``) they do not stop the
assistant. The operator may replace each language's list (``[speech.barge_in]``)."""

from __future__ import annotations

from typing import Final

DEFAULT_BACKCHANNELS: Final[dict[str, tuple[str, ...]]] = {
    "en": (
        "mm-hm", "mm-hmm", "mhm", "m", "mm", "mmm", "hm", "hmm", "uh-huh", "uh huh", "aha",
        "ah", "oh", "yeah", "yes", "yep", "yup", "okay", "ok", "right", "sure", "alright",
        "all right", "i see", "got it", "uh", "um",
    ),
    "de": (
        "mhm", "hm", "hmm", "aha", "ja", "jaja", "ja ja", "genau", "okay", "ok", "stimmt",
        "richtig", "alles klar", "gut", "äh", "ähm",
    ),
}  # fmt: skip
