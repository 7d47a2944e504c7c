"""What the answer models (api/models/) write beside their fields: a call's recording URL.
Timestamps are written by ``domain/timestamps.py`` ``iso``, as everywhere in voicedock."""

from __future__ import annotations

from voicedock.domain.records import Call


def recording_url(call: Call) -> str | None:
    """Where the call's recording downloads (``GET /calls/{id}/recording``), if it has one."""
    return f"/calls/{call.id}/recording" if call.recording_path else None
