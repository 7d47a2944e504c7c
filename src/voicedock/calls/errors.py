"""Errors of the call engine that map to documented HTTP bodies.

ApiError (voicedock.errors)
├── CallNotActive (409)      — control command on a call that is not in progress
└── CallNotPlaced (503)      — the PBX refused or could not be reached; the call is
                               recorded as failed and its id is in the body
"""

from __future__ import annotations

from voicedock.errors import ApiError, Conflict


class CallNotActive(Conflict):
    error = "Call not active"


class CallNotPlaced(ApiError):
    status = 503
    error = "PBX unavailable"

    def __init__(self, message: str, *, call_id: str) -> None:
        super().__init__(message)
        self.call_id = call_id

    def body(self) -> dict[str, str]:
        return {"error": self.error, "message": self.message, "call_id": self.call_id}


class PbxCommandFailed(ApiError):
    """A control command the PBX could not carry out (the call itself is unchanged)."""

    status = 503
    error = "PBX unavailable"
