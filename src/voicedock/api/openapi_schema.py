"""The building blocks of the OpenAPI document: shared schemas and the operation builder."""

from __future__ import annotations

from typing import Any

from voicedock.validation import NOT_BLANK_LINE_PATTERN, NOT_BLANK_PATTERN

Schema = dict[str, Any]

E164: Schema = {"type": "string", "pattern": r"^\+[1-9][0-9]{6,14}$", "example": "+31612345678"}
# A number voicedock dials: the destination policy applies (docs/transfers.md).
DESTINATION: Schema = {
    **E164,
    "description": "A number that exists (400 Invalid destination format otherwise) in a country "
    "the operator allows, not premium rate, shared cost, personal or a blocked range (403 "
    "Destination not allowed otherwise).",
}
ID: Schema = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}$"}
# A text as ``calls.fields.text`` reads it: not blank, no NUL; LINE: one line, no control
# characters at all.
TEXT: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": 2000,
    "pattern": NOT_BLANK_PATTERN,
}
LINE: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": 2000,
    "pattern": NOT_BLANK_LINE_PATTERN,
}


def text(max_length: int, *, line: bool = False) -> Schema:
    return {**(LINE if line else TEXT), "maxLength": max_length}


TIME: Schema = {"type": ["string", "null"], "format": "date-time"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(props: dict[str, Schema], required: tuple[str, ...] = (), strict: bool = True) -> Schema:
    schema: Schema = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    if strict:
        schema["additionalProperties"] = False
    return schema


_ERRORS = {
    "400": "Invalid request: it breaks this schema (the message names the field)",
    "401": "Missing or invalid API key",
    "403": (
        "Forbidden: destination or trunk not allowed, an operator setting, or not within the"
        " API key's scope"
    ),
    "404": "Not found",
    "405": "Method not allowed",
    "409": "Conflict",
    "413": "Body too large",
    "415": "The body is declared of another type than JSON (Content-Type)",
    "422": "Valid by this schema but refused: it names what does not exist, contradicts what it "
    "is merged with, or a policy refuses it (docs/errors.md)",
    "429": "All phone numbers busy, a call or API rate limit reached (Retry-After)",
    "503": "PBX unavailable, or the database for now (Retry-After)",
}
# Any authenticated route reads the store: a database that cannot answer right now is a 503
# with Retry-After (api/middleware.py), also on routes that never touch the PBX.
_STORE_UNAVAILABLE = "Database unavailable for now; retry after Retry-After seconds"
# Any authenticated request spends the API key's and organization's request budgets.
_RATE_LIMITED = "API rate limit ([rate_limits]) reached; retry after Retry-After seconds"


def _error(status: str) -> Schema:
    return {
        "description": _ERRORS[status],
        "content": {"application/json": {"schema": ref("Error")}},
    }


PATH_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def operation(
    summary: str,
    ok: tuple[str, str | None],
    *,
    body: str | None = None,
    params: list[Schema] | None = None,
    errors: str = "400 401 404 405 413",
    public: bool = False,
) -> Schema:
    code, schema = ok
    success: Schema = {"description": "Success"}
    if schema is not None:
        success["content"] = {"application/json": {"schema": ref(schema)}}
    responses: Schema = {code: success}
    for err in errors.split():
        responses[err] = _error(err)
    if not public and "503" not in responses:
        responses["503"] = {
            "description": _STORE_UNAVAILABLE,
            "content": {"application/json": {"schema": ref("Error")}},
        }
    if not public and "429" not in responses:  # api/rate_limits.py, before any handler
        responses["429"] = {
            "description": _RATE_LIMITED,
            "content": {"application/json": {"schema": ref("Error")}},
        }
    if "429" in responses:
        responses["429"]["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    op: Schema = {"summary": summary, "responses": responses}
    if params:
        op["parameters"] = params
    if body is not None:
        responses.setdefault("413", _error("413"))  # [server] max_body_bytes
        responses.setdefault("415", _error("415"))
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(body)}},
        }
    if public:
        op["security"] = []
    return op
