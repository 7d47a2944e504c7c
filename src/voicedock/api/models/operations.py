"""Route metadata: each operation's summary, body and answer models, parameters and the error
statuses it can answer, as OpenAPI operation objects referencing the models' schemas."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

import msgspec

Schema = dict[str, Any]

ERRORS = {
    "400": "Invalid request: it breaks this schema, or a rule the schema cannot check (a "
    "configuration that does not resolve on this node, a value the operator's policy refuses); "
    "the message names the field",
    "401": "Missing or invalid API key",
    "402": "The organization's monthly spending limit is reached (Spending limit reached, "
    "docs/billing.md): no new call until the month ends or the operator raises it",
    "403": (
        "Forbidden: destination or trunk not allowed, an operator setting, or not within the"
        " API key's scope"
    ),
    "404": "Not found",
    "405": "Method not allowed",
    "409": "Conflict",
    "413": "Body too large",
    "415": "The body is declared of another type than JSON (Content-Type)",
    "422": "Valid, but it names an object of the organization that does not exist or does not "
    "fit (a tool or analysis template, a provider key, an assistant), or reuses an "
    "Idempotency-Key with another body (docs/errors.md)",
    "429": "All phone numbers busy, a call or API rate limit reached (Retry-After)",
    "503": "PBX unavailable, or the database for now (Retry-After)",
}
# Any authenticated route reads the store: a database that cannot answer right now is a 503
# with Retry-After (api/error_responses.py), also on routes that never touch the PBX.
_STORE_UNAVAILABLE = "Database unavailable for now; retry after Retry-After seconds"
# Any authenticated request spends the API key's and organization's request budgets.
_RATE_LIMITED = "API rate limit ([rate_limits]) reached; retry after Retry-After seconds"

PATH_ID: Schema = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def path_parameter(name: str, schema: Schema, description: str | None = None) -> Schema:
    """A path's ``{name}`` parameter of its own type (``path_parameters`` gives the others a
    plain string)."""
    described: Schema = {} if description is None else {"description": description}
    return {"name": name, "in": "path", "required": True, **described, "schema": schema}


_PATH_NAMES = re.compile(r"\{([^}]+)\}")
_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})


def path_parameters(paths: dict[str, Schema]) -> dict[str, Schema]:
    """``paths`` with each ``{name}`` of a path a required string parameter of every operation
    on it that does not declare it (first among its parameters; after its description)."""
    for path, item in paths.items():
        names = _PATH_NAMES.findall(path)
        for method, op in item.items():
            if method not in _METHODS:
                continue
            declared = {p["name"] for p in op.get("parameters", ()) if p["in"] == "path"}
            missing = [{**PATH_ID, "name": name} for name in names if name not in declared]
            if missing:
                item[method] = _with_parameters(op, [*missing, *op.get("parameters", ())])
    return paths


def _with_parameters(op: Schema, params: list[Schema]) -> Schema:
    if "parameters" in op:
        return {**op, "parameters": params}
    anchor = "description" if "description" in op else "responses"
    placed: Schema = {}
    for key, value in op.items():
        placed[key] = value
        if key == anchor:
            placed["parameters"] = params
    return placed


def ref(model: type[msgspec.Struct] | str) -> Schema:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": f"#/components/schemas/{name}"}


def error_response(status: str, description: str | None = None) -> Schema:
    return {
        "description": description or ERRORS[status],
        "content": {"application/json": {"schema": ref("Error")}},
    }


def too_many(description: str) -> Schema:
    """A 429 answer (an error body) whose ``Retry-After`` says when to try again."""
    return {
        "description": description,
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        "content": {"application/json": {"schema": ref("Error")}},
    }


def operation(
    summary: str,
    ok: tuple[str, type[msgspec.Struct] | str | None],
    *,
    body: type[msgspec.Struct] | str | None = None,
    params: list[Schema] | None = None,
    errors: str = "400 401 404 405 413",
    public: bool = False,
    description: str | None = None,
) -> Schema:
    """An operation answering ``ok`` (status, answer model); every authenticated one may also
    answer 429 and 503, every one with a body 413 and 415."""
    code, answer = ok
    success: Schema = {"description": "Success"}
    if answer is not None:
        success["content"] = {"application/json": {"schema": ref(answer)}}
    responses: Schema = {code: success}
    for err in errors.split():
        responses[err] = error_response(err)
    if not public and "503" not in responses:
        responses["503"] = error_response("503", _STORE_UNAVAILABLE)
    if not public and "429" not in responses:  # api/rate_limits.py, before any handler
        responses["429"] = error_response("429", _RATE_LIMITED)
    if "429" in responses:
        responses["429"]["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    op: Schema = {"summary": summary, "responses": responses}
    if description is not None:
        op["description"] = description
    if params:
        op["parameters"] = params
    if body is not None:
        responses.setdefault("413", error_response("413"))  # [server] max_body_bytes
        responses.setdefault("415", error_response("415"))
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": ref(body)}},
        }
    if public:
        op["security"] = []
    return op


def query_operation(
    summary: str,
    answer: type[msgspec.Struct],
    query: type[msgspec.Struct],
    errors: str = "400 401",
    description: str | None = None,
) -> Schema:
    """A GET answering ``answer`` (200), its query parameters ``query``'s fields."""
    params = query_parameters(query)
    return operation(
        summary, ("200", answer), params=params, errors=errors, description=description
    )


def with_csv(op: Schema, columns: Sequence[str], rows: str) -> Schema:
    """``op``, its 200 also as CSV (``text/csv``): ``columns`` named in this order, a row per
    what ``rows`` says."""
    op["responses"]["200"]["content"]["text/csv"] = {
        "schema": {"type": "string", "description": "Columns " + ", ".join(columns) + ": " + rows}
    }
    return op


def csv_body(description: str, pattern: str | None = None) -> Schema:
    """A request body's CSV form (``text/csv``): a string, ``description`` saying what its rows
    hold; ``pattern``: a regular expression its simplest form matches, where one is stated."""
    schema: Schema = {"type": "string"}
    if pattern is not None:
        schema["pattern"] = pattern
    schema["description"] = description
    return {"schema": schema}


def owned_paths(
    path: str,
    *,
    a_record: str,
    reply: type[msgspec.Struct],
    listing: type[msgspec.Struct],
    create: tuple[str, type[msgspec.Struct] | str],
    update: tuple[str, type[msgspec.Struct] | str] | None,
    query: type[msgspec.Struct] | None = None,
    created: type[msgspec.Struct] | None = None,
    delete: str = "",
    names_records: bool = False,
    held_while: str = "",
) -> dict[str, Schema]:
    """An organization's records at ``path`` (templates, squads, test suites, webhook
    endpoints): listed (paged by ``query`` where it has one), created (409 at the
    organization's most), read, updated and deleted by id. ``a_record`` names one ("a tool
    template"); ``create`` and ``update`` are each a summary and the body it takes (``update``
    None: none is updated); ``created``: the creation's answer, when not ``reply``; ``delete``:
    its summary, when not "Delete ``a_record``"; ``names_records``: a body may name a record of
    the organization that is not (422); ``held_while``: when one is not deleted ("an assistant
    references it": 409)."""
    plural = a_record.split(" ", 1)[1] + "s"
    create_summary, create_body = create
    unknown = " 422" if names_records else ""
    if query is None:
        listed = operation(f"List {plural}", ("200", listing), errors="401")
    else:
        listed = query_operation(f"List {plural}", listing, query)
    deleted = delete or f"Delete {a_record}"
    if held_while:
        deleted += f" (409 while {held_while})"
    item: Schema = {"get": operation(f"Get {a_record}", ("200", reply), errors="401 404")}
    if update is not None:
        update_summary, update_body = update
        item["patch"] = operation(
            update_summary, ("200", reply), body=update_body, errors="400 401 404 413" + unknown
        )
    item["delete"] = operation(
        deleted, ("204", None), errors="401 404 409" if held_while else "401 404"
    )
    return {
        path: {
            "get": listed,
            "post": operation(
                create_summary,
                ("201", created or reply),
                body=create_body,
                errors="400 401 409 413" + unknown,
            ),
        },
        f"{path}/{{id}}": item,
    }


def query_parameters(model: type[msgspec.Struct]) -> list[Schema]:
    """A query model's fields as query parameters (their schemas, descriptions hoisted); the
    model goes in its module's MODELS, so that what the fields reference is published."""
    (_, components) = msgspec.json.schema_components(
        [model], ref_template="#/components/schemas/{name}"
    )
    params = []
    for name, schema in components[model.__name__]["properties"].items():
        schema = dict(schema)
        schema.pop("title", None)
        param: Schema = {"name": name, "in": "query", "schema": schema}
        if "description" in schema:
            param["description"] = schema.pop("description")
        params.append(param)
    return params


# What every answer of a deprecated alias carries (api/resources.py deprecation_headers).
DEPRECATION_HEADERS: Schema = {
    "Deprecation": {"schema": {"type": "string", "const": "true"}},
    "Warning": {"schema": {"type": "string"}, "description": "299: the path that replaces it"},
    "Link": {"schema": {"type": "string"}, "description": "rel=deprecation: this document"},
}


def deprecated_alias(item: Schema, successor: str) -> Schema:
    """A path item's operations at a deprecated alias of ``successor``: the same bodies and
    statuses, each operation ``deprecated``, its successes' deprecation headers documented."""
    alias: Schema = {}
    for method, op in item.items():
        op = copy.deepcopy(op)
        op["deprecated"] = True
        op["summary"] = f"{op['summary']} (deprecated: use {successor})"
        for status, response in op["responses"].items():
            if status.startswith("2"):
                response["headers"] = copy.deepcopy(DEPRECATION_HEADERS)
        alias[method] = op
    return alias
