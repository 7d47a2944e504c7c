"""``/provider-keys``: an organization's own keys for cloud providers (bring your own key)."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from voicedock.api.models.base import Body, Reply, of_record
from voicedock.api.models.field_types import Time
from voicedock.api.models.operations import Schema, operation
from voicedock.domain.records import ProviderKey as ProviderKeyRecord
from voicedock.domain.secret_fields import MASK
from voicedock.domain.tenant_provider_fields import KEY_NAME_MAX, KEY_NAME_PATTERN
from voicedock.validation import NOT_BLANK_LINE_PATTERN

# The providers whose sections take an api_key (domain/tenant_provider_fields.py cloud_providers()).
Provider = Literal[
    "deepgram",
    "elevenlabs",
    "mistral",
    "ollama",
    "openai",
    "openai-compatible",
    "xai",
    "xai_realtime",
]
Name = Annotated[
    str,
    Meta(
        pattern=KEY_NAME_PATTERN,
        max_length=KEY_NAME_MAX,
        description="Unique in the organization; what assistants' api_key_ref names.",
    ),
]
Secret = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=500,
        pattern=NOT_BLANK_LINE_PATTERN,
        description="The provider's API key: stored sealed, never answered.",
    ),
]


class ProviderKey(Reply, kw_only=True):
    """A stored key as listed: its secret masked (``****`` and its last 4 characters)."""

    id: str
    name: str
    provider: str
    api_key: Annotated[str, Meta(description="Masked: **** and the key's last 4 characters")]
    created_at: Time
    updated_at: Time

    @classmethod
    def of(cls, key: ProviderKeyRecord) -> ProviderKey:
        return of_record(cls, key, api_key=MASK + key.last4)


class ProviderKeyCreate(Body, kw_only=True):
    name: Name
    provider: Provider
    api_key: Secret


class ProviderKeyRotate(Body, kw_only=True):
    api_key: Secret


class ProviderKeyList(Reply, kw_only=True):
    provider_keys: list[ProviderKey]


_FORBIDDEN = " 403 when the operator does not allow provider keys ([byok] mode = off, or no key)."

PATHS: dict[str, Schema] = {
    "/provider-keys": {
        "get": operation(
            "List the organization's provider keys, masked." + _FORBIDDEN,
            ("200", ProviderKeyList),
            errors="401 403",
        ),
        "post": operation(
            "Store a provider key (sealed at rest); the answer shows it masked." + _FORBIDDEN,
            ("201", ProviderKey),
            body=ProviderKeyCreate,
            errors="400 401 403 409 413",
        ),
    },
    "/provider-keys/{id}": {
        "get": operation(
            "Get a provider key, masked.",
            ("200", ProviderKey),
            errors="401 403 404",
        ),
        "patch": operation(
            "Rotate a provider key: its new api_key replaces the old one; assistants "
            "referencing it by name use the new key from their next call.",
            ("200", ProviderKey),
            body=ProviderKeyRotate,
            errors="400 401 403 404 413",
        ),
        "delete": operation(
            "Delete a provider key; 409 while an assistant references it.",
            ("204", None),
            errors="401 403 404 409",
        ),
    },
}
MODELS = (ProviderKey, ProviderKeyCreate, ProviderKeyRotate, ProviderKeyList)
