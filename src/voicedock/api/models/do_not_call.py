"""``/do-not-call``: the organization's own do-not-call entries (numbers and ranges), added one
at a time or imported from a CSV (docs/compliance.md)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from msgspec import Meta

from voicedock.api.models.base import Body, Reply
from voicedock.api.models.operations import Schema, csv_body, operation
from voicedock.api.models.refusals import JSON_OBJECT, Refusal, refusal
from voicedock.domain.do_not_call import MAX_ENTRY_LENGTH, RANGE_MARK
from voicedock.errors import BadRequest
from voicedock.validation import require_e164

ENTRY_ERROR = "Invalid request"


def read_entry(value: object, field: str) -> object:
    """Words a refused entry as before ranges were taken: a number, as ``require_e164``."""
    if isinstance(value, str) and value.endswith(RANGE_MARK):
        raise BadRequest(
            f"{field} must be a range: '+', 1-15 digits, then '*' (+1900*)", error=ENTRY_ERROR
        )
    return require_e164(value, field)


# A number (E.164) or a range: "+" and 1-15 digits, then "*" (domain/do_not_call.py).
Entry = Annotated[
    str,
    Meta(
        pattern=r"^\+[0-9]{1,15}\*?$",
        max_length=MAX_ENTRY_LENGTH,
        description="An E.164 number (+31612345678), or a range: '+', digits beginning with a "
        "country calling code, then '*' (+1900* is every number starting with +1900)",
    ),
    refusal(reader=read_entry),
]


class DoNotCallNumber(Body, kw_only=True):
    REFUSAL: ClassVar[Refusal | None] = JSON_OBJECT

    number: Entry


class DoNotCallList(Reply, kw_only=True):
    numbers: list[str]


class DoNotCallAdded(Reply, kw_only=True):
    success: bool
    number: str


class DoNotCallRejectedRow(Reply, kw_only=True):
    """A CSV row that is no entry: its number (1-based, the header counted) and why."""

    row: int
    message: str


class DoNotCallImported(Reply, kw_only=True):
    success: bool
    added: int  # entries the list did not hold yet
    rejected: list[DoNotCallRejectedRow]


class Done(Reply, kw_only=True):
    success: bool


def _import() -> Schema:
    op = operation(
        "Import do-not-call entries from a CSV (text/csv): one number or range a row, in the "
        "first column; an optional header row names it 'number'. Rows that are no entry are "
        "reported, the others added",
        ("201", DoNotCallImported),
        body="string",
        errors="400 401 409 413 415",
    )
    op["requestBody"]["content"] = {
        "text/csv": csv_body(
            "One entry a row in the first column (other columns are ignored); a first row "
            "'number' is a header."
        )
    }
    return op


PATHS: dict[str, Schema] = {
    "/do-not-call": {
        "get": operation(
            "The organization's do-not-call list (its own entries; the operator's apply too)",
            ("200", DoNotCallList),
            errors="401",
        ),
        "post": operation(
            "Add a number or a range to the do-not-call list",
            ("201", DoNotCallAdded),
            body=DoNotCallNumber,
            errors="400 401 409 413",
        ),
    },
    "/do-not-call/import": {"post": _import()},
    "/do-not-call/{number}": {
        "delete": operation(
            "Remove a number or a range from the do-not-call list",
            ("200", Done),
            errors="401 404",
        )
    },
}
MODELS = (
    DoNotCallNumber,
    DoNotCallList,
    DoNotCallAdded,
    DoNotCallRejectedRow,
    DoNotCallImported,
    Done,
)
