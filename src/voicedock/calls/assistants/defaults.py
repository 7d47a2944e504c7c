"""An organization's ``assistant_defaults`` (``PATCH /organization``) checked as an assistant's
configuration is: the fields it may set are the organization's (``organizations/settings.py``),
what they may hold an assistant's (``config.py``)."""

from __future__ import annotations

from collections.abc import Mapping

from voicedock.calls.assistants.config import check_config
from voicedock.domain.json import JsonObject, JsonValue
from voicedock.domain.secret_fields import check_secrets_stay, restore_masked
from voicedock.errors import BadRequest
from voicedock.organizations.settings import DEFAULT_FIELDS


def check_defaults(obj: object, stored: Mapping[str, JsonValue]) -> JsonObject:
    """An organization's ``assistant_defaults`` checked as an assistant's configuration is
    (400 if invalid); a masked provider key read back keeps the stored one, where its section's
    provider and URL are the stored ones (else 422)."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise BadRequest("assistant_defaults must be an object")
    unknown = sorted(set(obj) - set(DEFAULT_FIELDS))
    if unknown:
        raise BadRequest(
            f"assistant_defaults.{unknown[0]} is not a default an organization may set"
            f" (one of {', '.join(DEFAULT_FIELDS)})"
        )
    present = {k: v for k, v in obj.items() if v is not None}
    checked = check_config(present, "assistant_defaults", allow_profile=False)
    restored = restore_masked(checked, stored)
    check_secrets_stay(checked, restored, stored)  # a stored key goes where it went
    return restored
