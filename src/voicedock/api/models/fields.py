"""Field types the models share: identifiers, numbers, texts, timestamps (bounds and patterns
come from the floors that define them)."""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta

from voicedock.calls.assistants.placeholders import MAX_VARIABLE_LENGTH, MAX_VARIABLES
from voicedock.validation import NOT_BLANK_LINE_PATTERN, NOT_BLANK_PATTERN

E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}$"
TEXT_MAX = 2000

E164 = Annotated[str, Meta(pattern=E164_PATTERN, extra_json_schema={"example": "+31612345678"})]
# A number voicedock dials: the destination policy applies (docs/transfers.md).
Destination = Annotated[
    str,
    Meta(
        pattern=E164_PATTERN,
        description="A number that exists (400 Invalid destination format otherwise) in a "
        "country the operator allows, not premium rate, shared cost, personal or a blocked range "
        "(403 Destination not allowed otherwise).",
        extra_json_schema={"example": "+31612345678"},
    ),
]
Id = Annotated[str, Meta(pattern=ID_PATTERN)]
# The values of {{placeholders}}: a campaign contact's, or one outbound call's.
Variables = Annotated[
    dict[
        Annotated[str, Meta(pattern=ID_PATTERN)],
        Annotated[str, Meta(max_length=MAX_VARIABLE_LENGTH)],
    ],
    Meta(
        max_length=MAX_VARIABLES,
        description="Fill {{placeholders}} in first_message, context, system_prompt and "
        "voicemail_message; a placeholder without a value stays as written.",
    ),
]


def text(max_length: int = TEXT_MAX, *, line: bool = False, **meta: Any) -> Meta:
    """The bounds of a text (``Annotated[str, text(...)]``) as ``calls.fields.text`` reads it:
    not blank, no NUL; ``line``: one line, no control characters at all."""
    pattern = NOT_BLANK_LINE_PATTERN if line else NOT_BLANK_PATTERN
    return Meta(min_length=1, max_length=max_length, pattern=pattern, **meta)


Text = Annotated[str, text()]
# A timestamp as api/serialize.py writes it (ISO 8601 UTC, ms, Z), or null.
Time = Annotated[str | None, Meta(extra_json_schema={"format": "date-time"})]
