"""What the caller hears of a media leg's output, and when.

The pacer writes frames ahead of their due time (Asterisk's queue holds them until then,
``media/pacer.py``), so a frame written is not yet a frame heard. ``HeardFrames`` hands each
frame to its ``tap`` (a call's recording, its live listeners: cheap and synchronous) at the
frame's due time: at once when it is due already, else once the pacer's clock reaches it.
Frames written ahead that the PBX drops (a barge-in's FLUSH_MEDIA, silence cut so that speech
starts at once) are never heard, so never tapped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

__all__ = ["HeardFrames", "Tap"]

Tap = Callable[[bytes, float | None], None]
"""Sees a frame when the caller hears it; ``at`` is the frame's due time on the pacer's clock,
or None for "now"."""


class HeardFrames:
    """One leg's frames on their way to the caller's ear, told to ``tap`` as they are heard."""

    __slots__ = ("_ahead", "tap")

    def __init__(self) -> None:
        self.tap: Tap | None = None
        self._ahead: deque[tuple[float, bytes]] = deque()  # written ahead, not yet heard

    def written(self, frame: bytes, due: float, lateness: float, *, scheduled: bool) -> None:
        """``frame`` was written ``lateness`` seconds after its due time ``due`` (negative:
        ahead of it); ``scheduled``: its due time is told to the tap (not "now"). Only
        while a ``tap`` is set."""
        tap = self.tap
        assert tap is not None
        if lateness >= 0:
            tap(frame, due if scheduled else None)
        else:
            self._ahead.append((due, frame))

    def release(self, now: float) -> None:
        """The frames written ahead and due by ``now`` are heard."""
        ahead, tap = self._ahead, self.tap
        while ahead and ahead[0][0] <= now:
            due, frame = ahead.popleft()
            if tap is not None:
                tap(frame, due)

    def drop(self, now: float) -> None:
        """What was written ahead is dropped at the PBX: the frames due by ``now`` were heard,
        the others never will be."""
        self.release(now)
        self._ahead.clear()
