"""``HeardTimeline``: where the caller's audio, as the dialogue heard it, lies in the call's
recording.

The dialogue counts the caller's audio in samples: a turn's audio starts so many seconds of
audio before the frame that ended it. The recording places each caller frame by when it came
(``media/recording.py``): the frames that waited out a stall of the event loop come at once,
after the silence the file filled for the stall but the dialogue never heard; a gap's silence
the dialogue heard is let go where the file's caller channel is ahead of the clock. So the
same moment of the caller's speech lies at different seconds of the two under load, by up to
the stalls' length: the wall clock alone cannot say where a word the dialogue heard is in the
file.

The timeline keeps, for each caller frame, when it was handed on (the wall clock, just before
the dialogue heard it), how much of the caller's audio came before it, and where the recording
put it. A moment counted back from a frame the dialogue decided on (``placed(anchor,
before)``) is then found frame by frame: exact however the frames came. Three floats a frame
(about 4 MB for an hour's call): kept only for calls that need it (a redaction plan's words
silenced in the recording).
"""

from __future__ import annotations

from array import array
from bisect import bisect_right


class HeardTimeline:
    """The caller frames of one call: when each came, where the heard audio and the file
    had got to."""

    def __init__(self) -> None:
        self._walls = array("d")  # when each frame was handed on (UNIX time)
        self._heard = array("d")  # seconds of the caller's audio before it
        self._placed = array("d")  # where its first sample is in the file (seconds)
        self._total = 0.0  # seconds of the caller's audio so far

    def add(self, wall: float, duration: float, placed: float) -> None:
        """A caller frame of ``duration`` seconds, handed on at ``wall``, is at ``placed``
        seconds of the file (where it would be, for one the file let go)."""
        self._walls.append(wall)
        self._heard.append(self._total)
        self._placed.append(placed)
        self._total += duration

    def placed(self, anchor: float, before: float) -> float | None:
        """Where in the file (seconds) the caller's audio was ``before`` seconds before the
        end of the last frame handed on at or before ``anchor`` (UNIX time); None: no frame
        by then, or a moment before the first frame."""
        last = bisect_right(self._walls, anchor) - 1
        if last < 0:
            return None
        end = self._heard[last + 1] if last + 1 < len(self._heard) else self._total
        moment = end - before
        index = bisect_right(self._heard, moment) - 1
        if index < 0:
            return None
        # Within the frame, up to where the next frame starts in the file (none, for a frame
        # the file let go).
        if index + 1 < len(self._placed):
            room = max(0.0, self._placed[index + 1] - self._placed[index])
        else:
            room = self._total - self._heard[index]
        return self._placed[index] + min(moment - self._heard[index], room)
