"""Domain records → the documented JSON shapes (timestamps ISO 8601 UTC with ``Z``)."""

from __future__ import annotations

from datetime import UTC, datetime

from voicedock.domain.records import (
    ApiKey,
    Call,
    JsonObject,
)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    utc = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def recording_url(call: Call) -> str | None:
    """Where the call's recording downloads (``GET /calls/{id}/recording``), if it has one."""
    return f"/calls/{call.id}/recording" if call.recording_path else None


def api_key_json(key: ApiKey) -> JsonObject:
    """A key as listed: never its secret nor its hash."""
    return {
        "id": key.id,
        "name": key.name,
        "scope": key.scope.value,
        "created_at": iso(key.created_at),
        "revoked_at": iso(key.revoked_at),
    }
