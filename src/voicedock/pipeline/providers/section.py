"""A provider's configuration section: its type, and how a section's JSON becomes one.

The types are ``domain/assistant_config.py``'s (``SttConfig``, ``TtsConfig``, ``LlmConfig``,
``RealtimeConfig``); each provider is made from its section and reads the fields it knows. An
organization's part of a section is bounded by ``domain/tenant_provider_fields.py`` before it
gets here, the operator's comes from the ``[speech]`` settings; a value of the wrong kind is a
``ProviderConfigError`` naming its key (``stt_config.streaming: Expected `bool`, got `str```).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TypeVar

import msgspec

from voicedock.domain.assistant_config import LlmConfig, RealtimeConfig, SttConfig, TtsConfig
from voicedock.pipeline.providers.base import ProviderConfigError

Section = TypeVar("Section", SttConfig, TtsConfig, LlmConfig, RealtimeConfig)

_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")


def decoded(kind: type[Section], value: Mapping[str, object], where: str) -> Section:
    """``value`` (a section's JSON, as stored or completed by the operator's settings) as
    ``kind``; keys no provider of the kind reads are left out, as a provider always ignored
    them. ``where`` names the section in the error (``stt_config``)."""
    try:
        return msgspec.convert(value, kind, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        found = _AT.search(message)
        if found is None:
            raise ProviderConfigError(f"{where}: {message}") from None
        path = found["path"].replace("`", "")
        detail = message[: found.start()]
        raise ProviderConfigError(
            f"{where}.{path}: {detail}" if path else f"{where}: {detail}"
        ) from None
