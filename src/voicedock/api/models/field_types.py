"""Field types the models share: identifiers, numbers, texts, timestamps (bounds and patterns
come from the floors that define them)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from voicedock.api.models.refusals import refusal
from voicedock.calls import json_readers
from voicedock.calls.assistants.placeholders import MAX_VARIABLE_LENGTH, MAX_VARIABLES
from voicedock.errors import BadRequest
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


# A value calls/json_readers.py read by hand before its model did: refused in its words where it
# refused the value, in the model's where only the model did.
def said_as_text(
    max_len: int = json_readers.MAX_TEXT, *, line: bool = False, required: bool = False
) -> Meta:
    """A text: ``must be a string``, ``must not be empty``, ``must be at most N characters``,
    ``must not contain control characters``; ``is required`` (absent or null) if it is."""
    return refusal(
        reader=lambda value, field: json_readers.text(
            {field: value}, field, required=required, max_len=max_len, multiline=not line
        )
    )


def said_as_integer(low: int, high: int) -> Meta:
    """An integer: ``must be an integer``, ``must be between low and high``."""
    return refusal(
        reader=lambda value, field: json_readers.integer({field: value}, field, 0, low, high)
    )


def said_as_choice(*choices: str) -> Meta:
    """One of ``choices``: ``must be one of: ...``."""
    return refusal(
        reader=lambda value, field: json_readers.choice({field: value}, field, choices, choices[0])
    )


TRUE_OR_FALSE = refusal(
    reader=lambda value, field: json_readers.boolean({field: value}, field, False)
)
# An id whose refusal says what an id is.
_IDENTIFIER = "{field} must be an identifier (ASCII letters, digits, '_', '.', '-')"
Identifier = Annotated[Id, refusal(_IDENTIFIER)]


def _not_null(value: object, field: str) -> None:
    if value is None:
        raise BadRequest(f"{field} must not be null")


# Which assistant a call names: never left open (null is a 400 of its own).
AssistantId = Annotated[Id, refusal(_IDENTIFIER, reader=_not_null)]
# The values of {{placeholders}}: a campaign contact's, or one outbound call's.
_VARIABLE = refusal(
    "{field}: names are identifiers and values strings of at most "
    f"{MAX_VARIABLE_LENGTH} characters"
)
Variables = Annotated[
    dict[
        Annotated[str, Meta(pattern=ID_PATTERN), _VARIABLE],
        Annotated[str, Meta(max_length=MAX_VARIABLE_LENGTH), _VARIABLE],
    ],
    Meta(
        max_length=MAX_VARIABLES,
        description="Fill {{placeholders}} in first_message, context, system_prompt, "
        "voicemail_message and screening_message; a placeholder without a value stays as "
        "written.",
    ),
    refusal(f"{{field}} must be an object of at most {MAX_VARIABLES} entries"),
]


def text(max_length: int = TEXT_MAX, *, line: bool = False, description: str | None = None) -> Meta:
    """The bounds of a text (``Annotated[str, text(...)]``) as ``calls.json_readers.text`` reads it:
    not blank, no NUL; ``line``: one line, no control characters at all."""
    pattern = NOT_BLANK_LINE_PATTERN if line else NOT_BLANK_PATTERN
    return Meta(min_length=1, max_length=max_length, pattern=pattern, description=description)


Text = Annotated[str, text()]
# A timestamp as domain/timestamps.py writes it (ISO 8601 UTC, ms, Z), or null.
Time = Annotated[str | None, Meta(extra_json_schema={"format": "date-time"})]

# ``include_tests`` of GET /calls and GET /usage: the test suites' calls too.
IncludeTests = Annotated[
    bool,
    Meta(
        description="true: the test calls of test suites' runs too (by default they are left out)."
    ),
]


def include_tests(value: str | None) -> bool:
    """``include_tests`` as given in a query (400 for anything but true or false)."""
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise BadRequest("include_tests must be true or false")
