"""JSON Schemas written by an organization, and the data checked against them, kept bounded.

An assistant's ``analysis_plan.structured_data_schema`` (its own, or an analysis template's) is
applied (``jsonschema``) to what the organization's own LLM answers, and tool ``parameters``
are schemas too (only passed to the model). Either could stall the node that checks them, so
``check_tenant_schema`` refuses, when a schema is saved (an assistant, an analysis template, a
transient assistant of ``POST /calls/outbound``: a ``400`` naming the place), what cannot be
bounded:

* **Regular expressions** (``pattern``, ``patternProperties``): Python's ``re`` cannot be
  interrupted and holds the interpreter while it backtracks (``^(a+)+$`` on a long answer).
* **Size and depth** (tool parameters too, which are never applied here and so may keep their
  patterns): ``MAX_SCHEMA_BYTES`` of JSON, ``MAX_DEPTH`` levels of nested schemas, and
  ``$ref`` only inside the schema (``#...``): nothing is fetched. A ``type`` list holds at most
  the seven type names, and lists of property names (``required``, ``dependentRequired``,
  ``dependencies``) hold names (the meta-schema's check of a long list of objects there
  compared every pair of it: 1.5 s on the event loop). An applied schema holds at most
  ``MAX_SUBSCHEMAS`` schemas as written (``$defs`` included): checking it against the
  meta-schema when it is saved costs about 0.2 ms per schema, on the event loop.
* **Growth** (applied schemas): a schema that refers to itself is refused, and so is one whose
  subschemas, each ``$ref`` counted as the schema it points to, number more than
  ``MAX_SUBSCHEMAS`` or nest deeper than ``MAX_DEPTH`` levels. A schema is checked against a
  value by walking both together; each (subschema, value) pair is visited at most once, so
  without cycles the work grows with subschemas × values, never exponentially. A ``$ref`` that
  refers back to itself (``{"$defs": {"n": {"anyOf": [{"items": {"$ref": "#/$defs/n"}}, ...]}}}``)
  doubles the work at each level of a nested answer, and so does an acyclic chain of
  definitions each referring twice to the next: hours of CPU from 200 bytes. ``anyOf``,
  ``oneOf`` and ``allOf`` hold at most ``MAX_BRANCHES`` schemas.

  *Why ``$ref`` stays:* an extraction schema reuses a definition (an address for the caller
  and for the delivery) and a template shared by many assistants is easier to read with
  ``$defs``; what users never need is a value of unbounded depth from a phone call, which is
  all that recursion adds. So ``$ref`` is accepted as a JSON pointer inside the schema
  (``#`` or ``#/...``, resolved when saved: one that points to nothing is refused), without
  cycles; a recursive structure is written out to the depth the call needs.
* **Re-validating keywords**: ``unevaluatedProperties`` and ``unevaluatedItems`` make the
  validator check the sibling branches again at each level (exponential in nesting): use
  ``additionalProperties`` and ``items``. ``$dynamicRef``/``$recursiveRef`` are refused, and
  so is a subschema that moves the base of its references (``$id``, ``id``, ``$schema`` below
  the root).
* **``uniqueItems``** is accepted on any array: ``validation_error`` checks it in one pass
  over the items (each item's canonical form in a set: ``unique_items``) instead of
  ``jsonschema``'s comparison of every pair, which took ~20 s over a 64 KiB answer of distinct
  objects.

The schema is checked again before it is applied (``schema_refusal``, ``refusal``: a
configuration saved before these limits must not bypass them), and the model's answer is
bounded too: at most ``MAX_INSTANCE_BYTES`` of JSON, nested at most ``MAX_INSTANCE_DEPTH``
levels. What is left
(a schema of 250 subschemas on 8000 values is still seconds of work) runs in the node's
schema workers, processes of their own killed at a deadline
(``pipeline/analysis/schema_checks.py``); ``validation_error`` is what a worker runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Protocol
from urllib.parse import unquote

from voicedock.errors import BadRequest

MAX_SCHEMA_BYTES = 16_384
MAX_DEPTH = 16
MAX_SUBSCHEMAS = 256  # applied subschemas, each $ref counted as what it points to
MAX_BRANCHES = 32  # schemas of one anyOf / oneOf / allOf
MAX_INSTANCE_BYTES = 65_536
MAX_INSTANCE_DEPTH = 32
MAX_ERROR_CHARS = 500  # a validation error's text (it quotes the value)
JSON_TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")
REFUSED_KEYWORDS = ("pattern", "patternProperties", "$dynamicRef", "$recursiveRef")
# Keywords that make the validator evaluate the sibling branches again, at every level.
REVALIDATING_KEYWORDS = ("unevaluatedProperties", "unevaluatedItems")
# Keywords that move the base a subschema's references resolve against.
REBASING_KEYWORDS = ("$id", "id", "$schema")
BRANCHING_KEYWORDS = ("anyOf", "oneOf", "allOf")
# Keywords whose value is a schema, a list of schemas, or a map of names to schemas.
_ONE = (
    "items", "additionalItems", "additionalProperties", "unevaluatedItems",
    "unevaluatedProperties", "contains", "propertyNames", "not", "if", "then", "else",
)  # fmt: skip
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_APPLIED_MAP = ("properties", "dependentSchemas", "dependencies")
_MAP = ("$defs", "definitions", *_APPLIED_MAP)


def check_tenant_schema(schema: object, where: str, *, applied: bool = True) -> None:
    """400 naming what makes ``schema`` unsafe to apply (``where`` names the schema). A
    schema voicedock never applies (``applied=False``: tool parameters, only offered to the
    model) may hold patterns, references of any shape and cycles; size, depth and references
    outside the schema are bounded all the same."""
    if not isinstance(schema, dict):
        raise BadRequest(f"{where} must be a JSON Schema object")
    try:
        size = len(json.dumps(schema))
    except (TypeError, ValueError, RecursionError):
        raise BadRequest(f"{where} is not JSON") from None
    if size > MAX_SCHEMA_BYTES:
        raise BadRequest(f"{where} must be at most {MAX_SCHEMA_BYTES} bytes of JSON")
    written = _walk(schema, where, 0, applied)
    if applied and written > MAX_SUBSCHEMAS:
        raise BadRequest(f"{where} must hold at most {MAX_SUBSCHEMAS} subschemas ($defs included)")
    if applied:
        _Expansion(schema, where).check()


def _walk(schema: object, where: str, depth: int, applied: bool) -> int:
    """Check ``schema`` and what it holds; how many schemas that is (itself included)."""
    if not isinstance(schema, dict):
        return 1  # true/false schemas; a wrong type is check_schema's to report
    if depth > MAX_DEPTH:
        raise BadRequest(f"{where}: schemas nested deeper than {MAX_DEPTH} levels")
    ref = schema.get("$ref")
    if ref is not None and not (isinstance(ref, str) and ref.startswith("#")):
        raise BadRequest(f"{where}.$ref must point inside the schema (#/...)")
    kind = schema.get("type")
    if isinstance(kind, list) and not (
        len(kind) <= len(JSON_TYPES) and all(isinstance(name, str) for name in kind)
    ):
        raise BadRequest(f"{where}.type must be one of {JSON_TYPES} or a list of them")
    _check_name_lists(schema, where)
    if applied:
        _check_keywords(schema, where, depth)
    return 1 + sum(
        _walk(item, f"{where}.{keyword}{place}", depth + 1, applied)
        for keyword, place, item in _subschemas(schema, _MAP)
    )


def _check_name_lists(schema: dict[str, object], where: str) -> None:
    """Lists of property names hold names: the meta-schema checks a ``dependencies`` list
    inside an ``anyOf``, where every error of the branch is gathered, ``uniqueItems``
    comparing every pair of a list of objects included."""
    lists = [("required", schema.get("required"))]
    for keyword in ("dependentRequired", "dependencies"):
        named = schema.get(keyword)
        if isinstance(named, dict):
            lists.extend((f"{keyword}.{name}", value) for name, value in named.items())
    for place, names in lists:
        if isinstance(names, list) and not all(isinstance(name, str) for name in names):
            raise BadRequest(f"{where}.{place} must be a list of property names")


def _check_keywords(schema: dict[str, object], where: str, depth: int) -> None:
    for keyword in REFUSED_KEYWORDS:
        if keyword in schema:
            raise BadRequest(
                f"{where}.{keyword} is not accepted: regular expressions and dynamic references "
                "cannot be bounded in time (use enum, const, minLength/maxLength or format)"
            )
    for keyword in REVALIDATING_KEYWORDS:
        if keyword in schema:
            raise BadRequest(
                f"{where}.{keyword} is not accepted: it checks the other keywords again at "
                "every level, which grows exponentially with nesting (use "
                "additionalProperties or items)"
            )
    for keyword in REBASING_KEYWORDS if depth > 0 else ():
        if isinstance(schema.get(keyword), str):
            raise BadRequest(
                f"{where}.{keyword} is not accepted below the root: references resolve "
                "against the whole schema"
            )
    for keyword in BRANCHING_KEYWORDS:
        branches = schema.get(keyword)
        if isinstance(branches, list) and len(branches) > MAX_BRANCHES:
            raise BadRequest(f"{where}.{keyword} must hold at most {MAX_BRANCHES} schemas")
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref != "#" and not ref.startswith("#/"):
        raise BadRequest(f"{where}.$ref must be a JSON pointer inside the schema (# or #/...)")


def _subschemas(
    schema: Mapping[str, object], maps: tuple[str, ...]
) -> list[tuple[str, str, object]]:
    """``(keyword, place, subschema)`` of every schema ``schema`` holds under its keywords
    (``maps``: the keywords whose value names its schemas); ``place`` is ``[i]``, ``.name``
    or empty."""
    found: list[tuple[str, str, object]] = []
    for keyword in _ONE:
        if isinstance(schema.get(keyword), dict | bool):
            found.append((keyword, "", schema[keyword]))
    for keyword in _LIST:
        items = schema.get(keyword)
        if isinstance(items, list):
            found.extend((keyword, f"[{i}]", item) for i, item in enumerate(items))
    for keyword in maps:
        named = schema.get(keyword)
        if isinstance(named, dict):
            found.extend(
                (keyword, f".{name}", item)
                for name, item in named.items()
                if isinstance(item, dict | bool)
            )
    return found


class _Expansion:
    """The schema as the validator walks it, each ``$ref`` replaced by what it points to:
    refused when it is infinite (a cycle), larger than ``MAX_SUBSCHEMAS`` or deeper than
    ``MAX_DEPTH``. Each schema object is measured once (its size and height remembered), so
    this costs the schema's size, not its expansion's."""

    def __init__(self, root: dict[str, object], where: str) -> None:
        self.root = root
        self.where = where
        self._measured: dict[int, tuple[int, int]] = {}  # id(schema) -> (subschemas, height)
        self._open: set[int] = set()  # schemas being measured: reaching one again is a cycle

    def check(self) -> None:
        self._measure(self.root, self.where)

    def _measure(self, schema: object, where: str) -> tuple[int, int]:
        """(subschemas, height) of ``schema``, found at ``where``, expanded."""
        if not isinstance(schema, dict):
            return 1, 0
        known = self._measured.get(id(schema))
        if known is not None:
            return known
        self._open.add(id(schema))
        # (the place named if it leads back, the place of the subschema, the subschema)
        parts = [
            (f"{where}.{k}{p}", f"{where}.{k}{p}", sub)
            for k, p, sub in _subschemas(schema, _APPLIED_MAP)
        ]
        ref = schema.get("$ref")
        if isinstance(ref, str):
            parts.append((f"{where}.$ref", *self._target(ref, f"{where}.$ref")))
        count, height = 1, 0
        for named, place, part in parts:
            if id(part) in self._open:
                raise BadRequest(
                    f"{named} leads back to a schema that contains it: a schema that refers "
                    "to itself (directly or through others) is not accepted (write out the "
                    "levels a call needs)"
                )
            size, below = self._measure(part, place)
            count += size
            height = max(height, below + 1)
            if count > MAX_SUBSCHEMAS:
                raise BadRequest(
                    f"{self.where} must hold at most {MAX_SUBSCHEMAS} subschemas, counting "
                    "each $ref as the schema it points to"
                )
            if height > MAX_DEPTH:
                raise BadRequest(
                    f"{named}: schemas nested deeper than {MAX_DEPTH} levels (counting each "
                    "$ref as the schema it points to)"
                )
        self._open.discard(id(schema))
        self._measured[id(schema)] = (count, height)
        return count, height

    def _target(self, ref: str, where: str) -> tuple[str, object]:
        """The place and the schema ``ref`` (``#`` or ``#/a/b``: a JSON pointer in a URI
        fragment) points to; a 400 naming ``where`` if there is none."""
        node: object = self.root
        place = self.where
        for token in ref[2:].split("/") if ref != "#" else ():
            name = unquote(token).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and name in node:
                node, place = node[name], f"{place}.{name}"
            elif isinstance(node, list) and name.isdigit() and int(name) < len(node):
                node, place = node[int(name)], f"{place}[{name}]"
            else:
                raise BadRequest(f"{where} points to nothing in the schema")
        if not isinstance(node, dict | bool):
            raise BadRequest(f"{where} does not point to a schema")
        return place, node


def schema_refusal(schema: Mapping[str, object]) -> str | None:
    """Why ``schema`` is not applied at all (None: it may be): a configuration saved before
    these limits. Linear in the schema's size (at most ``MAX_SCHEMA_BYTES``): the event loop
    asks it before handing a check to a worker."""
    try:
        check_tenant_schema(dict(schema), "schema")
    except BadRequest as exc:
        return f"the structured data schema is refused: {exc.message}"
    return None


def refusal(schema: Mapping[str, object], instance: object) -> str | None:
    """Why ``instance`` is not even checked against ``schema`` (None: it may be): the schema
    is refused (``schema_refusal``), or the answer is too large or too deep."""
    refused = schema_refusal(schema)
    if refused is not None:
        return refused
    try:
        size = len(json.dumps(instance, separators=(",", ":")))
    except (TypeError, ValueError, RecursionError):
        return "the structured data is not JSON"
    if size > MAX_INSTANCE_BYTES:
        return f"the structured data is larger than {MAX_INSTANCE_BYTES} bytes"
    if _depth(instance) > MAX_INSTANCE_DEPTH:
        return f"the structured data is nested deeper than {MAX_INSTANCE_DEPTH} levels"
    return None


def _depth(value: object) -> int:
    """How deeply ``value`` nests (a scalar: 0), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return deepest


def validation_error(schema: Mapping[str, object], instance: object) -> str | None:
    """Why ``instance`` does not match ``schema`` (None: it does). ``refusal`` first, then
    ``jsonschema`` with ``uniqueItems`` in one pass. Blocking, and still possibly seconds of
    CPU within the limits: a schema worker runs it (``pipeline/analysis/schema_checks.py``)."""
    refused = refusal(schema, instance)
    if refused is not None:
        return refused
    from jsonschema import ValidationError
    from jsonschema.exceptions import best_match

    try:
        error = best_match(_validator_for(schema)(dict(schema)).iter_errors(instance))
    except Exception:  # noqa: BLE001 - a schema that cannot be applied
        return "the structured data schema could not be applied"
    if error is None:
        return None
    assert isinstance(error, ValidationError)
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    message = f"{where}: {error.message}"
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 1] + "…"
    return message


def metaschema_error(schema: Mapping[str, object]) -> str | None:
    """Why ``schema`` is not a JSON Schema (draft 2020-12; None: it is): ``jsonschema``'s
    ``check_schema``, its first error. Linear in the schema's size once ``check_tenant_schema``
    has passed: the meta-schema checks a ``type`` list inside an ``anyOf``, where every error
    of the branch is gathered, ``uniqueItems`` included (``"type": [1,300 distinct objects]``
    took ``jsonschema`` 1.5 s to refuse); ``check_tenant_schema`` refuses such a list first."""
    from jsonschema import Draft202012Validator, SchemaError

    try:
        Draft202012Validator.check_schema(dict(schema))
    except SchemaError as exc:
        return str(exc.message)
    return None


class _Validator(Protocol):
    """What voicedock uses of a ``jsonschema`` validator."""

    def __init__(self, schema: dict[str, object]) -> None: ...
    def iter_errors(self, instance: object) -> Iterator[object]: ...


_validators: dict[type[_Validator], type[_Validator]] = {}


def _validator_for(schema: Mapping[str, object]) -> type[_Validator]:
    """The validator ``jsonschema`` picks for ``schema`` (its ``$schema``, else 2020-12), with
    ``uniqueItems`` checked in one pass."""
    from jsonschema import Draft202012Validator
    from jsonschema.validators import validator_for

    return _extended(validator_for(dict(schema), default=Draft202012Validator))


def _extended(base: type[_Validator]) -> type[_Validator]:
    """``base`` with ``uniqueItems`` checked in one pass (``unique_items``)."""
    from jsonschema import ValidationError
    from jsonschema.validators import extend

    def unique(
        _validator: object, wanted: object, instance: object, _schema: object
    ) -> Iterator[object]:
        if wanted and isinstance(instance, list) and not unique_items(instance):
            yield ValidationError("the items are not unique")

    extended = _validators.get(base)
    if extended is None:
        extended = _validators[base] = extend(base, {"uniqueItems": unique})
    return extended


def unique_items(items: list[object]) -> bool:
    """Whether no two of ``items`` are equal as JSON Schema compares them (``1`` equals
    ``1.0``, ``true`` is not ``1``, objects ignore key order), in one pass over them."""
    seen: set[object] = set()
    for item in items:
        key = _canonical(item)
        if key in seen:
            return False
        seen.add(key)
    return True


def _canonical(value: object) -> object:
    """A hashable form of a JSON value, equal exactly when JSON Schema calls the values equal
    (nesting is bounded by ``MAX_INSTANCE_DEPTH``)."""
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, int | float):
        if isinstance(value, float) and math.isnan(value):
            return object()  # a NaN is unequal to everything, itself included
        return ("number", value)  # 1 and 1.0 are one number (equal, and hashed alike)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        return ("array", tuple(_canonical(item) for item in value))
    if isinstance(value, dict):
        return ("object", frozenset((key, _canonical(item)) for key, item in value.items()))
    return ("other", repr(value))
