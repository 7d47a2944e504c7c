"""The outbound calls ringing on this node, and the moment each must be answered by: its ring
timeout (the PBX's originate timeout) plus a grace the PBX's own timeout normally beats.
``pbx_events.RingTimeouts`` ends a call still ringing past it; an answer or an end stops it."""

from __future__ import annotations

import asyncio

from voicedock.calls.engine.attempts import on_failure

# How long past its ring timeout a call may still ring before the engine ends it: the PBX's
# own originate timeout comes first and gives the precise cause.
RING_GRACE_SECONDS = 3.0


class RingDeadlines:
    def __init__(self, grace: float = RING_GRACE_SECONDS) -> None:
        self.grace = grace  # seconds a call may ring past its ring timeout
        # Ringing outbound calls: loop time by which they must be answered (plus the grace).
        self._deadlines: dict[str, float] = {}
        self.changed = asyncio.Event()

    def watch(self, call_id: str, timeout_seconds: int) -> None:
        """The PBX rings ``call_id`` for at most ``timeout_seconds`` from now."""
        deadline = asyncio.get_running_loop().time() + timeout_seconds + self.grace
        self._deadlines[call_id] = deadline
        self.changed.set()

    def stop(self, call_id: str) -> None:
        """The call is answered or over: no longer ringing (undone if the attempt that moved
        it does not commit)."""
        deadline = self._deadlines.pop(call_id, None)
        if deadline is not None:
            on_failure(lambda: self._deadlines.setdefault(call_id, deadline))

    def take_due(self, now: float) -> list[str]:
        """The calls past their deadline at loop time ``now``, no longer watched."""
        due = [call_id for call_id, at in self._deadlines.items() if at <= now]
        for call_id in due:
            self._deadlines.pop(call_id, None)
        return due

    def next_due(self, default: float) -> float:
        """The loop time of the first deadline (``default`` when no call rings)."""
        return min(self._deadlines.values(), default=default)
