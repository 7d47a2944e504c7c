"""A gap in the caller's audio is silence, on the wall clock.

A far end may send nothing while its party is silent: silence suppression (DTX) on a trunk or a
phone, comfort noise, a muted handset, a party on hold, Asterisk's ``transmit_silence = no``.
Everything downstream of the caller's frames counts time in frames (endpointing, silence
prompts, the silence timeout, voicemail detection), so without frames no turn would ever end.

``GapFiller`` watches one caller stream. Once no frame has come for ``after`` (100 ms: above
network jitter, well below the shortest endpointing delay), it hands its owner silence frames
for the whole gap, from when the audio stopped, and from then on one frame per frame period of
wall-clock time, until real frames come again. The owner delivers them exactly as it delivers
the caller's own frames, so the dialogue, the recording, the live listeners and the voicemail
screening see wall-clock time and know nothing of the gap. Real frames are never held back nor
dropped: frames that come late, after their time was filled (a network stall longer than
``after``), go straight on, heard late rather than lost; each gap is timed from the wall clock
again, so no delay carries over from one gap to the next and nothing waits in a queue. A gap
the node made itself is not the far end's: when the event loop was held up (a visit comes a
period or more late), the frames that came meanwhile are still waiting to be read, so the watch
judges no stream quiet on that visit but on the next one, a period later, once they were read:
a stalled node delays the caller's audio but does not put silence into the middle of their
words (which the recognizer would hear, and which would move every later word in time).

A stream is filled while it is listened to (``listening()``, e.g. for as long as an iteration
of its frames runs), from the moment listening starts: a far end that never sends a frame is
silence from the start, so a silent party meets its silence timeout. ``stop()`` ends it for
good (the session is over).

``GapWatch``: one timer per event loop visits every stream being listened to, once per
``period`` (20 ms). Nothing happens per frame and there is no task or timer per call: a visit
compares the stream's count of frames received (its owner's counter) with the last visit's.
The timer callback runs in an empty context; the frames it fills are handed over in the
context in which listening started (the call's, for its log lines). Filled frames are
``GapFrame``s: the part of a gap filled at once, when it is seen, comes after its time, and a
recording lets such frames go where the caller's channel is ahead of the clock. A stream
whose visit fails is stopped, never the watch nor the other streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final, Protocol

from voicedock.media.pacer import TickStats

log = logging.getLogger("voicedock.media")

GAP_AFTER: Final = 0.100
"""How long no frame may come before the gap is filled with silence (seconds)."""
WATCH_PERIOD: Final = 0.020
"""How often the watch visits each stream (seconds)."""

_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GapWatch] = (
    weakref.WeakKeyDictionary()
)


class GapFrame(bytes):
    """A frame of silence standing in for a gap in the caller's audio: bytes like any caller
    frame, told apart where it matters (a recording lets it go where the caller's channel got
    ahead of the clock)."""

    __slots__ = ()


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Timers(Protocol):
    """The event loop's clock and timers (a virtual one in tests)."""

    def time(self) -> float: ...

    def call_at(
        self, when: float, callback: Callable[[], None], *, context: contextvars.Context
    ) -> Cancellable: ...


class GapFiller:
    """One caller stream's gaps, filled with ``silence`` through ``fill``; see the module."""

    __slots__ = (
        "_context",
        "_fill",
        "_filled_in_gap",
        "_half_visit",
        "_listeners",
        "_quiet_since",
        "_received",
        "_seen",
        "_silence",
        "_stopped",
        "_watch",
        "after",
        "filled_frames",
        "gaps",
        "period",
    )

    def __init__(
        self,
        fill: Callable[[bytes], None],
        silence: bytes,
        received: Callable[[], int],
        *,
        period: float,
        after: float = GAP_AFTER,
        watch: GapWatch | None = None,
    ) -> None:
        """``fill`` takes each silence frame (``silence``, one frame of ``period`` seconds) as
        the owner takes the caller's; ``received()`` is the owner's count of real frames;
        ``watch``: what visits the stream (default: the running loop's)."""
        if period <= 0 or after <= 0:
            raise ValueError("a gap filler needs a positive period and threshold")
        self._fill = fill
        self._silence = GapFrame(silence)
        self._received = received
        self.period = period
        self.after = after
        self._watch = watch
        self._context: contextvars.Context | None = None
        self._listeners = 0
        self._stopped = False
        self._half_visit = WATCH_PERIOD / 2
        self._seen = 0  # frames received at the last visit
        self._quiet_since = 0.0  # (about) when the last frame came
        self._filled_in_gap = 0  # frames filled since then
        self.filled_frames = 0
        """Silence frames handed over for gaps, in all."""
        self.gaps = 0
        """Gaps filled (each at least ``after`` long)."""

    @property
    def active(self) -> bool:
        """The stream is visited now (listened to, not stopped)."""
        return self._listeners > 0 and not self._stopped

    @contextmanager
    def listening(self) -> Iterator[None]:
        """Fill the stream's gaps while the block runs (from now on: time without frames
        since now is silence). Blocks may nest or overlap; the last one to end stops it."""
        self._listeners += 1
        if self._listeners == 1 and not self._stopped:
            self._start()
        try:
            yield
        finally:
            self._listeners -= 1
            if self._listeners == 0:
                self._detach()

    def stop(self) -> None:
        """Fill nothing more, ever (the stream is over). Idempotent. Lets go of the owner's
        callbacks, so an owner that holds its filler is freed without the collector."""
        self._stopped = True
        self._detach()
        self._fill, self._received = _fill_nothing, _received_nothing

    def _start(self) -> None:
        watch = self._watch = self._watch or GapWatch.shared()
        self._context = contextvars.copy_context()
        self._half_visit = watch.period / 2
        self._seen = self._received()
        self._quiet_since = watch.now()
        self._filled_in_gap = 0
        watch.attach(self)

    def _detach(self) -> None:
        if self._watch is not None:
            self._watch.detach(self)
        self._context = None  # holds the call's context variables

    def visit(self, now: float, *, judge: bool = True) -> None:
        """The watch's visit at ``now``: fill what is owed if the stream has been quiet for
        ``after`` or more; ``judge`` false: only note frames that came (the loop was held
        up: frames that waited may not have been read yet)."""
        context = self._context
        if context is None:
            return  # detached during this tick
        received = self._received()
        if received != self._seen:  # frames came since the last visit: no gap
            self._seen = received
            self._quiet_since = now - self._half_visit  # the last one, on average
            self._filled_in_gap = 0
            return
        quiet = now - self._quiet_since + 1e-6  # a visit due exactly ``after`` later counts
        if quiet < self.after or not judge:
            return
        owed = int(quiet / self.period) - self._filled_in_gap
        if owed <= 0:
            return
        if not self._filled_in_gap:
            self.gaps += 1
        self._filled_in_gap += owed
        self.filled_frames += owed
        context.run(self._fill_frames, owed)

    def _fill_frames(self, count: int) -> None:
        fill, silence = self._fill, self._silence
        for _ in range(count):
            fill(silence)


def _fill_nothing(_frame: bytes) -> None:
    pass


def _received_nothing() -> int:
    return 0


async def frames_of(
    queue: asyncio.Queue[bytes | None], gaps: GapFiller | None
) -> AsyncIterator[bytes]:
    """The frames ``queue`` holds until its ``None`` (the stream ended); while the iteration
    runs, ``gaps`` (when there is one) fills the stream's gaps (``listening``)."""
    with gaps.listening() if gaps is not None else contextlib.nullcontext():
        while (frame := await queue.get()) is not None:
            yield frame


@dataclass(slots=True)
class WatchStats(TickStats):
    visits: int = 0
    """Streams judged, summed over the ticks."""


class GapWatch:
    """One timer visiting every attached ``GapFiller`` each ``period``; see the module."""

    def __init__(self, timers: Timers, *, period: float = WATCH_PERIOD) -> None:
        if period <= 0:
            raise ValueError("a gap watch needs a positive period")
        self.period = period
        self._timers = timers
        self._fillers: dict[GapFiller, None] = {}
        self._visiting: tuple[GapFiller, ...] = ()
        self._timer: Cancellable | None = None
        self._deadline = 0.0
        self._graced = False  # the last tick came late and judged no stream
        self._context = contextvars.Context()  # the node's, bound to no call
        self.stats = WatchStats()

    @classmethod
    def shared(cls) -> GapWatch:
        """The watch of the running event loop."""
        loop = asyncio.get_running_loop()
        watch = _shared.get(loop)
        if watch is None:
            watch = _shared[loop] = cls(_LoopTimers(loop))
        return watch

    @property
    def streams(self) -> int:
        """Streams visited now."""
        return len(self._fillers)

    def now(self) -> float:
        return self._timers.time()

    def attach(self, filler: GapFiller) -> None:
        if filler in self._fillers:
            return
        self._fillers[filler] = None
        self._visiting = tuple(self._fillers)
        if self._timer is None:
            self._deadline = self._timers.time() + self.period
            self._schedule()

    def detach(self, filler: GapFiller) -> None:
        if filler in self._fillers:
            del self._fillers[filler]
            self._visiting = tuple(self._fillers)
        if not self._fillers and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        self._timer = self._timers.call_at(self._deadline, self._tick, context=self._context)

    def _tick(self) -> None:
        timers, stats = self._timers, self.stats
        now = timers.time()
        stats.ticks += 1
        # Held up a period or more (the loop was busy): the frames that came meanwhile wait
        # to be read after this tick, so no stream is judged quiet now but a period later;
        # a loop held up tick after tick still fills every other one.
        judge = self._graced or now - self._deadline < self.period
        self._graced = not judge
        for filler in self._visiting:
            try:
                filler.visit(now, judge=judge)
            except Exception as exc:  # noqa: BLE001 - one stream's failure is not the watch's
                log.warning("gap watch: a caller stream's visit failed: %s", exc)
                filler.stop()
        stats.visits += len(self._visiting)
        stats.busy_seconds += timers.time() - now
        if not self._fillers:
            self._timer = None
            return
        self._deadline += self.period
        if self._deadline <= now:  # the loop was held up: a fresh schedule, no ticks in a row
            self._deadline = now + self.period
        self._schedule()


class _LoopTimers:
    """``Timers`` of an asyncio event loop."""

    __slots__ = ("_loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def time(self) -> float:
        return self._loop.time()

    def call_at(
        self, when: float, callback: Callable[[], None], *, context: contextvars.Context
    ) -> Cancellable:
        return self._loop.call_at(when, callback, context=context)
