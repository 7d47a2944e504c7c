"""The formats the answer models (api/models/) write: timestamps ISO 8601 UTC with ms and
``Z``, a call's recording URL."""

from __future__ import annotations

from datetime import UTC, datetime

from voicedock.domain.records import Call


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    utc = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def recording_url(call: Call) -> str | None:
    """Where the call's recording downloads (``GET /calls/{id}/recording``), if it has one."""
    return f"/calls/{call.id}/recording" if call.recording_path else None
