"""What a fake FreeSWITCH channel plays, by the clock, of the files queued on it.

The real channel (FreeSWITCH 1.11.1, read in ``switch_ivr_async.c``/``switch_ivr.c`` and
measured on the lab) plays queued ``playback`` applications one after the other, in real time:

* ``uuid_broadcast <uuid> <file> aleg`` queues the playback with ``lead-frames: 5``: when the
  channel takes it up (``switch_ivr_parse_event``) it first reads 5 frames, so the file starts
  100 ms later: between files queued back to back the party hears 100 ms of silence.
* ``sendmsg <uuid>`` with ``execute playback`` and no ``lead-frames`` starts the file as soon as
  the one before it ends (or at once on an idle channel).
* ``uuid_break <uuid> all`` stops the file playing and drops the queue; without ``all`` only
  the file playing stops.
* A hang-up stops everything: what had not been played by then was never heard.
* ``uuid_audio_stream <uuid> stop`` deletes the module's files: a queued file that had not
  started by then fails to open and is skipped (one already playing is open and plays on).

``ChannelPlayout.heard()`` is the party's side: the audio played until now (or the cut), with
the silences between files, starting at the first file's first sample.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

LEAD_FRAME_S = 0.02  # switch_ivr_parse_event reads frames of the channel's 20 ms ptime


@dataclass(slots=True)
class QueuedFile:
    path: str
    audio: bytes | None  # L16 at the channel's rate; None: not a file of the module (a tone)
    queued_at: float
    lead_frames: int
    start: float = 0.0  # first sample played
    stop: float = 0.0  # last sample played (a break, a hang-up or the file's end)


class ChannelPlayout:
    """The playback queue of one fake channel; ``rate`` is the L16 rate of its stream."""

    def __init__(self, rate: int = 8000, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self.files: list[QueuedFile] = []  # in queue order, the dropped ones included
        self._free_at = 0.0  # when the channel is done with what was queued so far
        self._cut_at: float | None = None  # hung up

    def queue(self, path: str, audio: bytes | None, *, lead_frames: int) -> None:
        now = self._clock()
        if self._cut_at is not None:
            return
        item = QueuedFile(path, audio, now, lead_frames)
        item.start = max(self._free_at, now) + lead_frames * LEAD_FRAME_S
        length = len(audio) // 2 / self.rate if audio else 0.0
        item.stop = item.start + length
        self._free_at = item.stop
        self.files.append(item)

    def break_playback(self, *, all_queued: bool) -> None:
        """``uuid_break``: stop the file playing now; ``all`` drops those queued too."""
        now = self._clock()
        playing = [f for f in self.files if f.start <= now < f.stop]
        for item in playing:
            item.stop = now
        if all_queued:
            for item in self.files:
                if item.start > now:
                    item.start = item.stop = now  # dropped: never heard
        self._reschedule(now)

    def files_deleted(self) -> None:
        """The module deleted its files: those not yet started are skipped."""
        now = self._clock()
        for item in self.files:
            if item.start > now and item.audio is not None:
                item.audio = b""
        self._reschedule(now)

    def hang_up(self) -> None:
        if self._cut_at is None:
            self._cut_at = self._clock()

    def heard(self) -> bytes:
        """L16 the party heard, from the first file's start to now or the hang-up."""
        until = self._clock() if self._cut_at is None else self._cut_at
        played = [f for f in self.files if f.audio and f.start < until and f.stop > f.start]
        if not played:
            return b""
        origin = played[0].start
        out = bytearray()
        for item in played:
            assert item.audio is not None
            offset = round((item.start - origin) * self.rate) * 2
            end = min(item.stop, until)
            samples = round((end - item.start) * self.rate)
            if len(out) < offset:
                out += bytes(offset - len(out))
            out[offset:] = item.audio[: samples * 2]
        return bytes(out)

    def _reschedule(self, now: float) -> None:
        """Files after a cut or a skipped file move up (their lead frames still apply)."""
        free = now
        for item in self.files:
            if item.stop <= now:  # played, cut or dropped
                continue
            if item.start <= now:  # playing
                free = item.stop
                continue
            length = len(item.audio) // 2 / self.rate if item.audio else 0.0
            item.start = max(free, item.queued_at) + item.lead_frames * LEAD_FRAME_S
            item.stop = item.start + length
            free = item.stop
        self._free_at = free
