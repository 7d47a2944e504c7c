"""Structured data schemas (and the answers they choke on) that an organization might send to
stall a node, for the tests and benches of ``domain/tenant_schemas.py`` and
``pipeline/analysis/schema_checks.py``.

- ``RECURSIVE``: the issue's 174 bytes; checked against ``{"x": nested(n)}`` its work doubles
  at each level (16 levels: 3 s; 30: hours). Refused since the limits (a ``$ref`` cycle).
- ``SLOW_SCHEMA`` / ``SLOW_ANSWER``: accepted by every limit (no cycle, 68 subschemas counting
  the references, 13 KB; an answer of 49 KB) and still minutes of CPU: each of 5,500 values
  compared with an enum of 1,000 objects, through 32 references to it. No static bound takes
  that away without refusing ordinary schemas; the deadline does.
"""

from __future__ import annotations

import json
from typing import Any

RECURSIVE: dict[str, Any] = {
    "$defs": {
        "n": {
            "anyOf": [
                {"items": {"$ref": "#/$defs/n"}, "minItems": 2},
                {"items": {"$ref": "#/$defs/n"}},
            ]
        }
    },
    "properties": {"x": {"$ref": "#/$defs/n"}},
}
SLOW_SCHEMA: dict[str, Any] = {
    "$defs": {"known": {"enum": [{"k": i} for i in range(1000)]}},
    "type": "object",
    "properties": {
        "x": {"type": "array", "items": {"allOf": [{"$ref": "#/$defs/known"}] * 32}},
    },
}
SLOW_ANSWER: dict[str, Any] = {"x": [{"k": -1}] * 5500}


def nested(depth: int) -> object:
    """``[[[...0...]]]``, ``depth`` lists deep."""
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


def analysis_answer(structured: object) -> str:
    """The JSON text of a model's analysis answer extracting ``structured``."""
    return json.dumps({"summary": "A call.", "sentiment": 5, "structured_data": structured})
