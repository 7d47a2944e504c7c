"""The AI disclosure of a call: that the caller speaks with an AI, said before the assistant
talks where the operator (or the organization, only ever more strictly) requires it
(docs/compliance.md).

``DisclosureRule`` is what applies to one call: who requires it, the text voicedock says when
the assistant's opening lacks it, and the phrases that count as a disclosure in that opening
(matched case-insensitively, whitespace folded). ``AiDisclosure`` is what the call record
keeps: how it was given and whether it was said.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import msgspec

RequiredBy = Literal["operator", "organization"]
# first_message: the assistant's opening (its consent message or first message) holds a
# phrase; spoken: voicedock said the operator's text before the assistant talked.
Method = Literal["first_message", "spoken"]
FIRST_MESSAGE: Method = "first_message"
SPOKEN: Method = "spoken"


@dataclass(frozen=True, slots=True)
class DisclosureRule:
    """The disclosure one call must give."""

    required_by: RequiredBy
    text: str  # what voicedock says when the opening lacks every phrase
    phrases: tuple[str, ...]  # what counts as a disclosure in the opening (the text counts)

    def given_by(self, opening: str | None) -> bool:
        """Whether ``opening`` (what the assistant says first) holds a disclosure."""
        return opening is not None and any(
            _folded(p) in _folded(opening) for p in (*self.phrases, self.text)
        )


def _folded(text: str) -> str:
    return " ".join(text.casefold().split())


class AiDisclosure(msgspec.Struct, frozen=True, kw_only=True):
    """How a call gave its required AI disclosure (``Call.ai_disclosure``)."""

    required_by: RequiredBy
    method: Method
    # The disclosure was said to the caller (in the transcript, whole); False: the call ended
    # (or the caller cut the opening) before it was.
    said: bool
    at: str | None = None  # when its message started (ISO 8601); None: not said
