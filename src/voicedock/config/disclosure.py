"""[ai_disclosure]: that the caller speaks with an AI, said before the assistant talks
(docs/compliance.md). The operator requires it for every call (``required``) or for the
organizations it names; an organization may require it for its own calls where the operator
does not (``PATCH /organization``), never the reverse."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from voicedock.config.table_types import NotEmpty, Table

DEFAULT_TEXT = "This call is handled by an AI assistant."
DEFAULT_PHRASES = (
    "AI assistant",
    "artificial intelligence",
    "virtual assistant",
    "automated assistant",
)
Phrase = Annotated[str, Meta(min_length=2, max_length=200)]


class AiDisclosureSettings(Table):
    # Every call's opening must disclose the AI (else voicedock says ``text`` first).
    required: bool = False
    # Organizations whose calls must, where ``required`` is false.
    organizations: list[NotEmpty] = msgspec.field(default_factory=list)
    # What voicedock says before the assistant talks when its opening holds no phrase.
    text: Annotated[NotEmpty, Meta(max_length=500)] = DEFAULT_TEXT
    # What counts as a disclosure in the assistant's opening (case-insensitive; ``text``
    # counts too).
    phrases: Annotated[list[Phrase], Meta(max_length=50)] = msgspec.field(
        default_factory=lambda: list(DEFAULT_PHRASES)
    )

    def required_for(self, organization: str | None) -> bool:
        """Whether the operator requires it for ``organization``'s calls (by its name)."""
        return self.required or organization in self.organizations
