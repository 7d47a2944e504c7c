"""Domain records → the documented JSON shapes (timestamps ISO 8601 UTC with ``Z``)."""

from __future__ import annotations

from datetime import UTC, datetime

from voicedock.domain.records import (
    ApiKey,
    Assistant,
    Call,
    JsonObject,
)
from voicedock.domain.secret_fields import masked


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    utc = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def recording_url(call: Call) -> str | None:
    """Where the call's recording downloads (``GET /calls/{id}/recording``), if it has one."""
    return f"/calls/{call.id}/recording" if call.recording_path else None


def assistant_json(a: Assistant) -> JsonObject:
    return {
        "id": a.id,
        "name": a.name,
        "business_name": a.business_name or None,  # null: none
        "active": a.active,
        **masked(a.config),  # provider keys are write-only
        "created_at": iso(a.created_at),
        "updated_at": iso(a.updated_at),
    }


def api_key_json(key: ApiKey) -> JsonObject:
    """A key as listed: never its secret nor its hash."""
    return {
        "id": key.id,
        "name": key.name,
        "scope": key.scope.value,
        "created_at": iso(key.created_at),
        "revoked_at": iso(key.revoked_at),
    }
