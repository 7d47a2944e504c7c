"""``{{name}}`` placeholders in an assistant's texts, filled from variables: a campaign
contact's, or those of one ``POST /calls/outbound``. A placeholder without a value stays as
written."""

from __future__ import annotations

import re
from collections.abc import Mapping

from voicedock.domain.json import JsonObject

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")
# The texts of an assistant configuration that speak to (or about) the contact.
FILLED_KEYS = ("first_message", "system_prompt", "context", "voicemail_message")
MAX_VARIABLES = 50
MAX_VARIABLE_LENGTH = 1_000


def fill(text: str, variables: Mapping[str, str]) -> str:
    """Each ``{{name}}`` whose name is a variable → its value; unknown ones stay as written."""
    return _PLACEHOLDER.sub(lambda m: variables.get(m.group(1), m.group(0)), text)


def fill_config(config: JsonObject, variables: Mapping[str, str]) -> JsonObject:
    """A copy of an assistant configuration with its texts filled."""
    filled: JsonObject = dict(config)
    for key in FILLED_KEYS:
        value = filled.get(key)
        if isinstance(value, str):
            filled[key] = fill(value, variables)
    return filled


__all__ = [
    "FILLED_KEYS",
    "MAX_VARIABLES",
    "MAX_VARIABLE_LENGTH",
    "fill",
    "fill_config",
]
