"""JSON as a type: what a value decoded from JSON (or about to be encoded) can be.

``JsonValue`` is for shapes that are really open (a tool's arguments, a tenant's metadata, a
provider's event that is passed through). A shape voicedock knows is a msgspec Struct, a
dataclass or a TypedDict instead; a ``JsonValue`` is narrowed with ``isinstance`` where it is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"


def json_object(value: object) -> JsonObject | None:
    """``value`` as a JSON object when it is one (a ``dict`` with string keys), else None."""
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return value
    return None


def value_at(value: object, path: Sequence[str], missing: object = None) -> object:
    """The value ``path`` leads to in decoded JSON, step by step: an object's key, or an
    array's index (digits); ``missing`` where it leads into neither. A key an object does not
    have leads to None (a field not sent)."""
    for step in path:
        if isinstance(value, dict):
            value = value.get(step)
        elif isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        else:
            return missing
    return value
