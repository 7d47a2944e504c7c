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


def _admin(
    summary: str,
    ok: tuple[str, type[Reply]],
    errors: str,
    body: type[Body] | None = None,
) -> Schema:
    """An operation only an admin key may call: its summary says so, and ``errors`` gain its
    403."""
    statuses = " ".join(sorted([*errors.split(), "403"]))
    return operation(
        summary + " Needs an admin key (403 otherwise).", ok, body=body, errors=statuses
    )


PATHS: dict[str, Schema] = {
    "/api-keys": {
        "get": _admin(
            "List the organization's API keys (never their secrets).", ("200", ApiKeyList), "401"
        ),
        "post": _admin(
            "Create an API key; the secret is in this answer only.",
            ("201", ApiKeyCreated),
            "400 401 413",
            body=ApiKeyCreate,
        ),
    },
    "/api-keys/{id}": {
        "get": _admin("Get an API key.", ("200", ApiKey), "401 404"),
        "patch": _admin(
            "Rename an API key.", ("200", ApiKey), "400 401 404 413", body=ApiKeyUpdate
        ),
        "delete": _admin(
            "Revoke an API key now: its requests, open event streams and console sessions "
            "end. It stays listed with revoked_at.",
            ("200", ApiKey),
            "401 404",
        ),
    },
}
MODELS = (ApiKey, ApiKeyCreated, ApiKeyCreate, ApiKeyUpdate, ApiKeyList)
