"""``/callers/{number}/memory``: what calls of the organization's assistants with ``memory``
left of a caller (docs/caller-memory.md), read and erased (a data-subject request)."""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import UNSET, Meta, UnsetType

from voicedock.api.models.base import Body, RecordReply, Reply
from voicedock.api.models.field_types import E164_PATTERN, Time
from voicedock.api.models.operations import Schema, operation, path_parameter
from voicedock.domain.records import CallerMemory as MemoryRecord

SUMMARY_MAX = 2_000  # characters of a summary edited through the API
FACTS_BYTES = 4_000  # its facts, as JSON


class CallerMemory(RecordReply[MemoryRecord], kw_only=True):
    id: str
    call_id: Annotated[str, Meta(description="The call that left it")]
    assistant_id: str | None = None
    summary: str
    facts: Annotated[
        dict[str, Any] | None, Meta(description="The structured data its analysis extracted")
    ] = None
    created_at: Time


class CallerMemoryEdit(Body, kw_only=True):
    """What a memory says, corrected: its summary, its facts (null: none); what is not sent
    stays."""

    summary: Annotated[str, Meta(min_length=1, max_length=SUMMARY_MAX)] | UnsetType = UNSET
    facts: (
        Annotated[
            dict[str, Any] | None,
            Meta(description=f"At most {FACTS_BYTES} bytes as JSON; null: none"),
        ]
        | UnsetType
    ) = UNSET


class CallerMemoryList(Reply, kw_only=True):
    number: str
    memories: list[CallerMemory]  # newest first


_NUMBER = path_parameter(
    "number",
    {"type": "string", "pattern": E164_PATTERN},
    "The caller's (or callee's) number, E.164",
)


def _of_caller(
    summary: str,
    ok: tuple[str, type[Reply] | None],
    errors: str,
    body: type[Body] | None = None,
) -> Schema:
    """An operation on a caller's memory: its ``{number}`` E.164 (400 otherwise), with
    ``errors``."""
    return operation(summary, ok, body=body, params=[_NUMBER], errors=f"400 {errors}")


PATHS: dict[str, Schema] = {
    "/callers/{number}/memory": {
        "get": _of_caller(
            "What the organization's calls left of a caller, newest first",
            ("200", CallerMemoryList),
            "401",
        ),
        "delete": _of_caller(
            "Erase what the calls left of a caller (a data-subject request)",
            ("204", None),
            "401 403",
        ),
    },
    "/callers/{number}/memory/{memory_id}": {
        "patch": _of_caller(
            "Correct what a call left of a caller (its summary, its facts)",
            ("200", CallerMemory),
            "401 403 404 413",
            body=CallerMemoryEdit,
        ),
        "delete": _of_caller(
            "Erase one thing a call left of a caller", ("204", None), "401 403 404"
        ),
    },
}
MODELS = (CallerMemory, CallerMemoryEdit, CallerMemoryList)
