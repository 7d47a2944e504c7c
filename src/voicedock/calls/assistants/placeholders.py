"""``{{name}}`` placeholders in an assistant's texts (its first message, system prompt,
voicemail and screening messages; a call's context), filled from variables: a campaign
contact's, or those of one ``POST /calls/outbound``. A placeholder without a value stays as
written."""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec
from msgspec import UnsetType

from voicedock.domain.assistant_config import AssistantConfig

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}")
MAX_VARIABLES = 50
MAX_VARIABLE_LENGTH = 1_000


def fill(text: str, variables: Mapping[str, str]) -> str:
    """Each ``{{name}}`` whose name is a variable → its value; unknown ones stay as written."""
    return _PLACEHOLDER.sub(lambda m: variables.get(m.group(1), m.group(0)), text)


def fill_config(config: AssistantConfig, variables: Mapping[str, str]) -> AssistantConfig:
    """A copy of an assistant configuration with its texts filled."""
    return msgspec.structs.replace(
        config,
        first_message=_filled(config.first_message, variables),
        system_prompt=_filled(config.system_prompt, variables),
        voicemail_message=_filled(config.voicemail_message, variables),
        screening_message=_filled(config.screening_message, variables),
    )


def _filled(text: str | UnsetType, variables: Mapping[str, str]) -> str | UnsetType:
    return text if isinstance(text, UnsetType) else fill(text, variables)


__all__ = [
    "MAX_VARIABLES",
    "MAX_VARIABLE_LENGTH",
    "fill",
    "fill_config",
]
