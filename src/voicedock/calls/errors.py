"""Errors of the call engine that map to documented HTTP bodies.

ApiError (voicedock.errors)
├── CallNotActive (409)      — control command on a call that is not in progress
├── PbxFailed (503)          — the PBX refused or could not be reached ("PBX unavailable")
│   ├── CallNotPlaced        — the call was not placed; it is recorded as failed and its
│   │                          id is in the body
│   └── PbxCommandFailed     — the PBX could not carry out a control command
├── NodeUnavailable (503)    — the node serving the call did not answer a command in time
├── NodeTakesNoCall (503)    — no new call on this node for now (a RetryLater)
│   ├── NodeAtCapacity       — its offline speech is at capacity (calls/speech_admission.py)
│   └── NodeDraining         — it drains and no other node takes the call
└── OwnerAnswered            — the answer of the node serving the call, passed on as it was
"""

from __future__ import annotations

from voicedock.errors import ApiError, Conflict, RetryLater


class CallNotActive(Conflict, error="Call not active"): ...


class PbxFailed(ApiError, status=503, error="PBX unavailable"):
    """The PBX refused or could not be reached: the API's 503 ``PBX unavailable``."""


class CallNotPlaced(PbxFailed):
    """The PBX did not place the call: it is recorded as failed, its id in the body."""

    def __init__(self, message: str, *, call_id: str) -> None:
        super().__init__(message, extra={"call_id": call_id})
        self.call_id = call_id


class PbxCommandFailed(PbxFailed):
    """A control command the PBX could not carry out (the call itself is unchanged)."""


class NodeUnavailable(ApiError, status=503, error="Node unavailable"):
    """The node that serves the call did not answer a control command in time."""


class OwnerAnswered(ApiError):
    """An error answer of the node serving the call, or of the node a draining node handed a
    call to (``calls/nodes/command_relay``), passed on to the API client with its status, body
    and headers (``Retry-After``) unchanged."""

    def __init__(
        self, status: int, body: dict[str, str], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(body.get("message", ""), error=body.get("error"))
        self.status = status
        self._body = body
        self._headers = dict(headers or {})

    def body(self) -> dict[str, str]:
        return dict(self._body)

    def headers(self) -> dict[str, str]:
        return dict(self._headers)


class NodeTakesNoCall(RetryLater):
    """This node takes no new call now (each kind is a 503 of its own title), before anything
    is stored or dialled; retry after ``Retry-After``."""


class NodeDraining(NodeTakesNoCall, status=503, error="Node draining"):
    """This node drains (``calls/nodes/drain.py``) and no other live node takes the call
    (another node, or this one restarted, may by ``Retry-After``)."""
