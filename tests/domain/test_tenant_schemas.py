"""Tenant JSON Schemas: bounded, no regular expressions, no cycles, no growth beyond a bound;
checking an answer against one never compares every pair of its items."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import jsonschema._keywords
import pytest

from fakes.hostile_schemas import RECURSIVE, nested
from voicedock.domain.tenant_schemas import (
    MAX_BRANCHES,
    MAX_SUBSCHEMAS,
    check_tenant_schema,
    refusal,
    unique_items,
    validation_error,
)
from voicedock.errors import BadRequest

pytestmark = pytest.mark.unit


def refused(schema: object, where: str = "s") -> str:
    with pytest.raises(BadRequest) as caught:
        check_tenant_schema(schema, where)
    return caught.value.message


def test_a_property_called_pattern_is_a_name_not_a_keyword() -> None:
    check_tenant_schema({"type": "object", "properties": {"pattern": {"type": "string"}}}, "s")
    with pytest.raises(BadRequest, match=r"^s\.items\.pattern is not accepted"):
        check_tenant_schema({"type": "array", "items": {"pattern": "a"}}, "s")


def test_tool_parameters_may_keep_patterns_and_cycles_but_not_their_size() -> None:
    params = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[0-9]+$"}}}
    check_tenant_schema(params, "tools[0].parameters", applied=False)
    check_tenant_schema(RECURSIVE, "tools[0].parameters", applied=False)  # only offered
    big = {"type": "object", "description": "x" * 20_000}
    with pytest.raises(BadRequest, match="at most 16384 bytes"):
        check_tenant_schema(big, "tools[0].parameters", applied=False)


@pytest.mark.parametrize(
    ("schema", "named"),
    [
        (RECURSIVE, "plan.$defs.n.anyOf[0].items.$ref leads back to a schema that contains it"),
        ({"properties": {"me": {"$ref": "#"}}}, "plan.properties.me.$ref leads back"),
        (
            {"$defs": {"a": {"items": {"$ref": "#/$defs/b"}}, "b": {"not": {"$ref": "#/$defs/a"}}},
             "$ref": "#/$defs/a"},
            "plan.$defs.b.not.$ref leads back",
        ),
    ],
)  # fmt: skip
def test_a_schema_that_refers_to_itself_is_refused_naming_the_reference(
    schema: dict[str, Any], named: str
) -> None:
    assert refused(schema, "plan").startswith(named)


def test_an_acyclic_chain_of_doubling_references_is_refused_by_its_expanded_size() -> None:
    defs: dict[str, Any] = {"d10": {"type": "string"}}
    for i in range(10):  # each level names the next twice: 2^10 schemas from 700 bytes
        ref = {"$ref": f"#/$defs/d{i + 1}"}
        defs[f"d{i}"] = {"properties": {"a": ref, "b": ref}}
    schema = {"$defs": defs, "$ref": "#/$defs/d0"}
    assert len(json.dumps(schema)) < 1000
    message = refused(schema)
    assert message == (
        f"s must hold at most {MAX_SUBSCHEMAS} subschemas, counting each $ref as the schema "
        "it points to"
    )


def test_references_count_in_depth_too() -> None:
    chain: dict[str, Any] = {f"a{i}": {"$ref": f"#/$defs/a{i + 1}"} for i in range(20)}
    schema = {"$defs": {**chain, "a20": {}}, "$ref": "#/$defs/a0"}
    assert "nested deeper than 16 levels (counting each $ref" in refused(schema)


def test_a_shared_definition_is_accepted() -> None:
    address = {"type": "object", "properties": {"street": {"type": "string"}}}
    schema = {
        "$defs": {"address": address},
        "type": "object",
        "properties": {"home": {"$ref": "#/$defs/address"}, "work": {"$ref": "#/$defs/address"}},
    }
    check_tenant_schema(schema, "s")
    assert validation_error(schema, {"home": {"street": "Main"}}) is None
    assert validation_error(schema, {"work": {"street": 1}}) == (
        "work/street: 1 is not of type 'string'"
    )


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"anyOf": [{}] * (MAX_BRANCHES + 1)}, f"s.anyOf must hold at most {MAX_BRANCHES}"),
        ({"$ref": "#/$defs/none"}, "s.$ref points to nothing in the schema"),
        ({"required": ["a"], "$ref": "#/required"}, "s.$ref does not point to a schema"),
        ({"$defs": {"a": {"$anchor": "a"}}, "$ref": "#a"}, "s.$ref must be a JSON pointer"),
        ({"unevaluatedProperties": False}, "s.unevaluatedProperties is not accepted"),
        ({"items": {"unevaluatedItems": False}}, "s.items.unevaluatedItems is not accepted"),
        ({"properties": {"a": {"$id": "https://x.example/a"}}}, "s.properties.a.$id is not"),
        ({"items": {"type": [{"a": i} for i in range(8)]}}, "s.items.type must be one of"),
        ({"dependencies": {"x": [{"a": 1}]}}, "s.dependencies.x must be a list of property"),
        ({"$defs": {f"d{i}": {} for i in range(300)}}, "s must hold at most 256 subschemas ($"),
    ],
)
def test_what_cannot_be_bounded_is_refused_naming_its_place(
    schema: dict[str, Any], message: str
) -> None:
    assert refused(schema).startswith(message)


def test_a_schema_stored_before_the_limits_is_refused_when_applied() -> None:
    schema = {"type": "object", "properties": {"c": {"type": "string", "pattern": "^(a+)+$"}}}
    error = validation_error(schema, {"c": "a" * 40 + "!"})  # would backtrack for ages
    assert error is not None
    assert error.startswith("the structured data schema is refused: schema.properties.c.pattern")
    error = validation_error(RECURSIVE, {"x": nested(30)})  # hours, before the limits
    assert str(error).startswith("the structured data schema is refused: schema.$defs.n.anyOf")


def test_the_answer_is_bounded_in_size_and_depth() -> None:
    assert "larger than 65536 bytes" in str(refusal({"type": "object"}, {"c": "x" * 70_000}))
    deep: object = 1
    for _ in range(40):
        deep = [deep]
    assert "nested deeper than 32 levels" in str(refusal({"type": "object"}, {"c": deep}))


def test_unique_items_compares_as_json_schema_does_in_one_pass() -> None:
    assert not unique_items([1, 1.0])
    assert unique_items([True, 1, False, 0, None])
    assert not unique_items([{"a": 1, "b": [2]}, {"b": [2.0], "a": 1}])
    assert unique_items([[1, 2], [2, 1], {"a": 1}, {"a": "1"}])
    assert unique_items([float("nan"), float("nan")])
    for case in ([1, 1.0], [True, 1], [{"a": [1]}, {"a": [True]}], ["a", "a"], [[], {}]):
        assert unique_items(case) == jsonschema.Draft202012Validator(
            {"uniqueItems": True}
        ).is_valid(case)


def test_unique_items_over_a_large_answer_never_compares_every_pair(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def pairwise(_items: object) -> bool:
        raise AssertionError("jsonschema's uniqueItems compares every pair of items")

    # ~18 million comparisons of objects here: tens of seconds of CPU per check.
    monkeypatch.setattr(jsonschema._keywords, "uniq", pairwise)
    items = [{"a": i} for i in range(6000)]
    assert len(json.dumps(items, separators=(",", ":"))) < 65_536
    assert validation_error({"type": "array", "uniqueItems": True}, items) is None
    assert validation_error({"uniqueItems": True}, [*items[:-1], {"a": 5}]) == (
        "(root): the items are not unique"
    )


def test_a_long_error_is_cut() -> None:
    error = validation_error({"type": "array", "items": {"type": "string"}}, [["x" * 2000]])
    assert error is not None
    assert len(error) <= 500
