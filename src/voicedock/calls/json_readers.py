"""Strict readers of JSON values: exact types, no unknown keys, no empty strings. The
assistant configuration's checks read its JSON object with them (``calls/assistants/``,
``calls/tools/``) until it is typed; ``check_text`` is a text's bounds where a model cannot
state them all.

Every failure is a ``BadRequest`` naming the field, so a client sees which value was wrong.
``bool`` is never accepted where an integer is expected (Python's ``True == 1``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from voicedock.domain.json import JsonObject, json_object
from voicedock.errors import BadRequest
from voicedock.validation import has_control_chars

MAX_TEXT = 10_000


def require_object(value: object, name: str = "body") -> JsonObject:
    obj = json_object(value)
    if obj is None:
        raise BadRequest(f"{name} must be a JSON object")
    return obj


def reject_unknown(obj: Mapping[str, object], allowed: Iterable[str], name: str = "body") -> None:
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise BadRequest(f"{name}: unknown field(s): {', '.join(unknown)}")


def text(
    obj: Mapping[str, object],
    key: str,
    *,
    required: bool = False,
    max_len: int = MAX_TEXT,
    multiline: bool = True,
) -> str | None:
    """A non-empty string (``None`` when absent or null and not required)."""
    value = obj.get(key)
    if value is None:
        if required:
            raise BadRequest(f"{key} is required")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    return check_text(value, key, max_len=max_len, line=not multiline)


def check_text(value: str, key: str, *, max_len: int = MAX_TEXT, line: bool = False) -> str:
    """A text that is not blank, at most ``max_len`` characters, without NUL (a ``line``:
    without any control character)."""
    if not value.strip():
        raise BadRequest(f"{key} must not be empty")
    if len(value) > max_len:
        raise BadRequest(f"{key} must be at most {max_len} characters")
    if "\x00" in value or (line and has_control_chars(value)):
        raise BadRequest(f"{key} must not contain control characters")
    return value


def boolean(obj: Mapping[str, object], key: str, default: bool) -> bool:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequest(f"{key} must be true or false")
    return value


def integer(obj: Mapping[str, object], key: str, default: int, low: int, high: int) -> int:
    value = obj.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{key} must be an integer")
    if not low <= value <= high:
        raise BadRequest(f"{key} must be between {low} and {high}")
    return value


def sub_object(obj: Mapping[str, object], key: str) -> JsonObject | None:
    value = obj.get(key)
    if value is None:
        return None
    return require_object(value, key)


def choice(obj: Mapping[str, object], key: str, choices: Iterable[str], default: str) -> str:
    allowed = tuple(choices)
    value = obj.get(key)
    if value is None:
        return default
    if value not in allowed:
        raise BadRequest(f"{key} must be one of: {', '.join(allowed)}")
    assert isinstance(value, str)
    return value
