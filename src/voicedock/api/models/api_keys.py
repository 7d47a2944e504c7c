"""``/api-keys``: an organization's API keys (admin keys only)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from voicedock.api.api_keys import MAX_NAME
from voicedock.api.models.base import Body, RecordReply, Reply, of_record
from voicedock.api.models.field_types import Time, text
from voicedock.api.models.operations import Schema, operation
from voicedock.domain.records import ApiKey as ApiKeyRecord
from voicedock.domain.records import KeyScope

Scope = Annotated[
    KeyScope,
    Meta(
        description="read_only: GET only (anything else is 403); full: the whole API; "
        "admin: also manages the organization's API keys."
    ),
]
Name = Annotated[str, text(MAX_NAME, line=True)]
Listen = Annotated[
    bool,
    Meta(
        description="Whether the key hears live calls (GET /calls/{id}/listen): full and admin "
        "keys unless the operator withdrew it, read-only keys only where the operator granted "
        "it (voicedock keys allow-listen / deny-listen)."
    ),
]


class ApiKey(RecordReply[ApiKeyRecord], kw_only=True):
    """A key as listed: never its secret nor its hash."""

    id: str
    name: str
    scope: Scope
    listen: Listen
    created_at: Time
    revoked_at: Time


class ApiKeyCreated(ApiKey, kw_only=True):
    key: Annotated[str, Meta(description="vd_...: shown only in this response")]

    @classmethod
    def of_new(cls, key: ApiKeyRecord, secret: str) -> ApiKeyCreated:
        return of_record(cls, key, key=secret)


class ApiKeyCreate(Body, kw_only=True):
    name: Name | None = None
    scope: Scope | None = None


class ApiKeyUpdate(Body, kw_only=True):
    name: Name


class ApiKeyList(Reply, kw_only=True):
    api_keys: list[ApiKey]


_ADMIN = " Needs an admin key (403 otherwise)."
_KEY_ERRORS = "401 403 404"

PATHS: dict[str, Schema] = {
    "/api-keys": {
        "get": operation(
            "List the organization's API keys (never their secrets)." + _ADMIN,
            ("200", ApiKeyList),
            errors="401 403",
        ),
        "post": operation(
            "Create an API key; the secret is in this answer only." + _ADMIN,
            ("201", ApiKeyCreated),
            body=ApiKeyCreate,
            errors="400 401 403 413",
        ),
    },
    "/api-keys/{id}": {
        "get": operation("Get an API key." + _ADMIN, ("200", ApiKey), errors=_KEY_ERRORS),
        "patch": operation(
            "Rename an API key." + _ADMIN,
            ("200", ApiKey),
            body=ApiKeyUpdate,
            errors="400 401 403 404 413",
        ),
        "delete": operation(
            "Revoke an API key now: its requests, open event streams and console sessions "
            "end. It stays listed with revoked_at." + _ADMIN,
            ("200", ApiKey),
            errors=_KEY_ERRORS,
        ),
    },
}
MODELS = (ApiKey, ApiKeyCreated, ApiKeyCreate, ApiKeyUpdate, ApiKeyList)
