"""JSON Schemas written by an organization, and the data checked against them, kept bounded.

An assistant's ``analysis_plan.structured_data_schema`` is applied (``jsonschema``) to what the
organization's own LLM answers, and tool ``parameters`` are schemas too (only passed to the
model). Either could stall the node that checks them:

* **Regular expressions are refused** (``pattern``, ``patternProperties``): Python's ``re``
  cannot be interrupted and holds the interpreter while it backtracks, so a pattern such as
  ``^(a+)+$`` on a long answer blocks every call of the process, wherever it runs. A ``400``
  names the keyword's place in the schema.
* **Size and depth are bounded** (tool parameters too, which are never applied here and so
  may keep their patterns) (``MAX_SCHEMA_BYTES`` of JSON, ``MAX_DEPTH`` levels of nested
  schemas), and ``$ref`` may only point inside the schema (``#...``): nothing is fetched.
* **Validation runs off the event loop** under a time limit (``pipeline/analysis.py`` runs
  ``validation_error`` in a small pool of its own, so it never takes the worker threads speech
  recognition runs in), on an answer of at most ``MAX_INSTANCE_BYTES``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from voicedock.errors import BadRequest

MAX_SCHEMA_BYTES = 16_384
MAX_DEPTH = 16
MAX_INSTANCE_BYTES = 65_536
REFUSED_KEYWORDS = ("pattern", "patternProperties", "$dynamicRef", "$recursiveRef")
# Keywords whose value is a schema, a list of schemas, or a map of names to schemas.
_ONE = (
    "items", "additionalItems", "additionalProperties", "unevaluatedItems",
    "unevaluatedProperties", "contains", "propertyNames", "not", "if", "then", "else",
)  # fmt: skip
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_MAP = ("properties", "$defs", "definitions", "dependentSchemas")


def check_tenant_schema(schema: object, where: str, *, applied: bool = True) -> None:
    """400 naming what makes ``schema`` unsafe to apply (``where`` names the schema). A
    schema voicedock never applies (``applied=False``: tool parameters, only offered to the
    model) may hold patterns; size, depth and references are bounded all the same."""
    if not isinstance(schema, dict):
        raise BadRequest(f"{where} must be a JSON Schema object")
    try:
        size = len(json.dumps(schema))
    except (TypeError, ValueError, RecursionError):
        raise BadRequest(f"{where} is not JSON") from None
    if size > MAX_SCHEMA_BYTES:
        raise BadRequest(f"{where} must be at most {MAX_SCHEMA_BYTES} bytes of JSON")
    _walk(schema, where, 0, applied)


def _walk(schema: object, where: str, depth: int, applied: bool) -> None:
    if not isinstance(schema, dict):
        return  # true/false schemas; a wrong type is check_schema's to report
    if depth > MAX_DEPTH:
        raise BadRequest(f"{where}: schemas nested deeper than {MAX_DEPTH} levels")
    for keyword in REFUSED_KEYWORDS if applied else ():
        if keyword in schema:
            raise BadRequest(
                f"{where}.{keyword} is not accepted: regular expressions and dynamic references "
                "cannot be bounded in time (use enum, const, minLength/maxLength or format)"
            )
    ref = schema.get("$ref")
    if ref is not None and not (isinstance(ref, str) and ref.startswith("#")):
        raise BadRequest(f"{where}.$ref must point inside the schema (#/...)")
    for keyword in _ONE:
        if isinstance(schema.get(keyword), dict):
            _walk(schema[keyword], f"{where}.{keyword}", depth + 1, applied)
    for keyword in _LIST:
        items = schema.get(keyword)
        if isinstance(items, list):
            for i, item in enumerate(items):
                _walk(item, f"{where}.{keyword}[{i}]", depth + 1, applied)
    for keyword in _MAP:
        named = schema.get(keyword)
        if isinstance(named, dict):
            for name, item in named.items():
                _walk(item, f"{where}.{keyword}.{name}", depth + 1, applied)


def validation_error(schema: Mapping[str, Any], instance: object) -> str | None:
    """Why ``instance`` does not match ``schema`` (None: it does). The schema is checked again
    (a configuration saved before these limits must not bypass them). Blocking: run it off
    the event loop."""
    try:
        check_tenant_schema(dict(schema), "schema")
    except BadRequest as exc:
        return f"the structured data schema is refused: {exc.message}"
    try:
        size = len(json.dumps(instance))
    except (TypeError, ValueError, RecursionError):
        return "the structured data is not JSON"
    if size > MAX_INSTANCE_BYTES:
        return f"the structured data is larger than {MAX_INSTANCE_BYTES} bytes"
    import jsonschema  # loaded when a plan needs it

    try:
        jsonschema.validate(instance, dict(schema))
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        return f"{where}: {exc.message}"
    except Exception:  # noqa: BLE001 - a schema that cannot be applied ($ref nobody resolves)
        return "the structured data schema could not be applied"
    return None
