"""A provider's configuration section, and how a provider reads a value from it.

A section (``{"provider": "openai", "model": ..., "read_timeout_s": ...}``) is JSON whose keys
each provider reads for itself (its ``from_config``): an organization's part is bounded by
``domain/tenant_provider_fields.py``, the operator's comes from the ``[speech]`` settings. A
value is narrowed where it is read, with Python's own conversions (``"3"`` reads as 3, as ``int()``
does); a value of another JSON kind (a list, an object, null where a number is due) raises
``TypeError``, as ``int()`` and ``float()`` do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

from voicedock.domain.json import JsonValue

ProviderSection: TypeAlias = Mapping[str, JsonValue]


def integer(section: ProviderSection, key: str, default: int) -> int:
    """``section[key]`` as an int (``default`` when absent)."""
    return int(_scalar(section.get(key, default), key))


def number(section: ProviderSection, key: str, default: float) -> float:
    """``section[key]`` as a float (``default`` when absent)."""
    return float(_scalar(section.get(key, default), key))


def optional_integer(section: ProviderSection, key: str, default: int | None = None) -> int | None:
    """``section[key]`` as an int; None when it is null (``default`` when absent)."""
    value = section.get(key, default)
    return None if value is None else int(_scalar(value, key))


def optional_number(section: ProviderSection, key: str) -> float | None:
    """``section[key]`` as a float; None when it is absent or null."""
    value = section.get(key)
    return None if value is None else float(_scalar(value, key))


def optional_text(section: ProviderSection, key: str, default: str | None = None) -> str | None:
    """``section[key]`` as a string; None when it is null (``default`` when absent)."""
    value = section.get(key, default)
    return None if value is None else str(value)


def _scalar(value: JsonValue, key: str) -> str | int | float:
    if isinstance(value, str | int | float):
        return value
    raise TypeError(f"{key} must be a number, not {type(value).__name__}")
