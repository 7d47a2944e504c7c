"""What the caller has heard, by the clock, when FreeSWITCH plays our audio as queued files.

FreeSWITCH gives no per-frame playout report for the files it plays, so playout is estimated:
the channel plays the files in the order they were queued, in real time and back to back
(``playback`` queued with ``sendmsg``: no lead frames between files), each starting when it is
queued on the channel (or when the previous one ends). ``PlayoutTimeline`` keeps that schedule
as *segments* (a run of one playback's frames inside one file) and, at any instant, confirms to
each ``Playback`` the frames the clock says were played, and resolves a finished playback as
completed when the end of its last segment has passed.

A file's audio goes out as a ``streamAudio`` message (``sent``: the module has it, the channel
not yet) and starts playing only once the ``playback`` of the file the module wrote is queued on
the channel (``queued``, after the play event and the ESL round trip): anchoring the schedule
there, not at the websocket send, is what keeps ``played()`` from running ahead of the channel.
Its error is the channel's pick-up of the queued file (at most one frame) plus the RTP path.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from voicedock.media.pacer import FRAME_PERIOD
from voicedock.media.playback import Playback


@dataclass(slots=True)
class Segment:
    playback: Playback
    first_frame: int  # frames of this playback in earlier segments
    frames: int
    start: float = 0.0  # when FreeSWITCH starts playing it (monotonic seconds)
    final: bool = False  # the playback's last segment

    @property
    def end(self) -> float:
        return self.start + self.frames * FRAME_PERIOD


class PlayoutTimeline:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._segments: deque[Segment] = deque()
        self._pending: dict[int, list[Segment]] = {}  # sent, not yet queued on the channel
        self.end = clock()
        """When everything queued on the channel will have been played."""

    def ahead(self) -> float:
        """Seconds of audio FreeSWITCH holds (queued or on its way) the caller has not heard."""
        pending = sum(s.frames for segments in self._pending.values() for s in segments)
        return max(0.0, self.end - self._clock()) + pending * FRAME_PERIOD

    def sent(self, index: int, segments: list[Segment]) -> None:
        """File ``index`` with these segments went to the module; it plays once ``queued``."""
        self._pending[index] = segments

    def queued(self, index: int, latency: float = FRAME_PERIOD) -> None:
        """File ``index`` was queued on the channel now: it plays after what is queued before
        it, or ``latency`` from now (the channel takes it up at its next frame)."""
        segments = self._pending.pop(index, None)
        if segments is not None:
            self.schedule(segments, latency)

    def lost(self, index: int) -> None:
        """File ``index`` will never play (FreeSWITCH refused it)."""
        for segment in self._pending.pop(index, []):
            if segment.final and not segment.playback.done:
                segment.playback.resolve(completed=False)

    def schedule(self, segments: list[Segment], latency: float = 0.0) -> None:
        """One file with these segments was handed to FreeSWITCH now."""
        start = max(self.end, self._clock() + latency)
        for segment in segments:
            segment.start = start
            start = segment.end
            self._segments.append(segment)
        self.end = start

    def finish(self, playback: Playback) -> None:
        """No more frames of ``playback`` will be scheduled (its utterance was sent)."""
        pending = (s for segments in reversed(self._pending.values()) for s in reversed(segments))
        last = next((s for s in pending if s.playback is playback), None)
        if last is None:
            last = next((s for s in reversed(self._segments) if s.playback is playback), None)
        if last is None:
            if not playback.done:
                playback.resolve(completed=True)  # nothing left to play (empty or all heard)
            return
        last.final = True
        self.advance()

    def advance(self) -> None:
        """Confirm what was played until now; resolve playbacks that were played to the end."""
        now = self._clock()
        while self._segments:
            segment = self._segments[0]
            if segment.start > now:
                return
            # The epsilon keeps 0.3 / 0.02 from truncating to 14 frames.
            played = min(segment.frames, int((now - segment.start) / FRAME_PERIOD + 1e-6))
            segment.playback.confirm(segment.first_frame + played, now=now)
            if now < segment.end:
                return
            self._segments.popleft()
            if segment.final and not segment.playback.done:
                segment.playback.resolve(completed=True)

    def clear(self) -> None:
        """Barge-in: FreeSWITCH dropped everything queued (``uuid_break all``)."""
        self.advance()
        self._segments.clear()
        self._pending.clear()
        self.end = self._clock()
