"""Real-time output pacing for one media leg.

Asterisk re-times what we send, but it sends *nothing* to the trunk while its queue is empty, and
a burst would sit in its 1000-frame queue (20 s) where barge-in cannot reach it cheaply. So the
pacer sends exactly one frame per 20 ms on an ABSOLUTE schedule (``deadline += period``, never
``sleep(period)``, so scheduling error does not accumulate), and a silence frame on every tick
where no speech is ready.

Speech is queued as ``Utterance`` objects, played strictly in order. An utterance that is still
being produced (streaming TTS) but has no frame ready gets silence for that tick (an underrun),
not the next utterance. When the last frame of a finished utterance has been sent the
``on_utterance_done`` hook runs *before* the next frame, so a MARK_MEDIA sent there sits exactly
between the two utterances in Asterisk's queue.

Flow control: on MEDIA_XOFF the pacer stops sending (silence included); nothing is dropped, the
queue keeps growing and producers are slowed by ``wait_for_room()``. On MEDIA_XON it resumes on a
fresh schedule. A ``congested`` connection (its transport still holds unsent frames) skips the
slot the same way, without blocking the clock. After a stall longer than ``max_catch_up_frames``
the schedule is re-anchored instead of bursting the missed ticks, which would only add permanent
latency in Asterisk's queue.

One frame slot is ``tick()``: synchronous, so one process-wide ``MediaClock``
(``voicedock.media.clock``) drives every Asterisk session's pacer from a single timer, writing
prebuilt websocket frames without an await per frame. ``run()`` is the same schedule on the
pacer's own loop, for a leg that is not on the shared clock (FreeSWITCH's virtual clock); its
``after_tick`` hook sends what the tick produced. The clock and sleep are injectable so the
behaviour is tested on a virtual clock.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

import numpy as np
import numpy.typing as npt

FRAME_PERIOD: Final = 0.020
_LATENESS_WINDOW: Final = 4096


class Utterance:
    """A run of frames played back to back; created by ``Pacer.open_utterance``."""

    __slots__ = ("_frames", "complete", "frames_queued", "frames_sent", "id")

    def __init__(self, utterance_id: str) -> None:
        self.id = utterance_id
        self._frames: deque[bytes] = deque()
        self.complete = False
        self.frames_queued = 0
        self.frames_sent = 0

    @property
    def frames_pending(self) -> int:
        return len(self._frames)

    def __repr__(self) -> str:
        return (
            f"Utterance({self.id!r}, sent={self.frames_sent}, queued={self.frames_queued}, "
            f"complete={self.complete})"
        )


class PacerStats:
    """Counters plus a ring of the most recent per-frame lateness values (seconds)."""

    __slots__ = (
        "_lateness",
        "congested_ticks",
        "frames_cleared",
        "frames_sent",
        "lateness_total",
        "max_lateness",
        "schedule_resets",
        "silence_frames",
        "speech_frames",
        "underruns",
        "xoff_count",
    )

    def __init__(self) -> None:
        self.frames_sent = 0
        self.speech_frames = 0
        self.silence_frames = 0
        self.underruns = 0
        """Ticks where an unfinished utterance had no frame ready (streaming TTS too slow)."""
        self.schedule_resets = 0
        self.xoff_count = 0
        self.max_lateness = 0.0
        self.lateness_total = 0.0  # seconds, summed over every frame sent
        self.frames_cleared = 0  # queued frames dropped unsent (barge-in)
        self.congested_ticks = 0  # slots skipped: the connection had not taken earlier frames
        self._lateness: npt.NDArray[np.float64] = np.zeros(_LATENESS_WINDOW)

    def record(self, lateness: float) -> None:
        self._lateness[self.frames_sent % _LATENESS_WINDOW] = lateness
        self.frames_sent += 1
        self.lateness_total += max(lateness, 0.0)
        self.max_lateness = max(lateness, self.max_lateness)

    def recent_lateness(self) -> npt.NDArray[np.float64]:
        """Lateness of the last (up to 4096) frames, oldest first."""
        n = self.frames_sent
        if n <= _LATENESS_WINDOW:
            return self._lateness[:n].copy()
        split = n % _LATENESS_WINDOW
        return np.concatenate((self._lateness[split:], self._lateness[:split]))

    def lateness_percentile(self, percentile: float) -> float:
        recent = self.recent_lateness()
        return float(np.percentile(recent, percentile)) if len(recent) else 0.0


class Pacer:
    """Sends one frame per period to ``send_frame``; see the module docstring."""

    def __init__(
        self,
        send_frame: Callable[[bytes], None],
        silence: bytes,
        *,
        period: float = FRAME_PERIOD,
        send_silence: bool = True,
        on_utterance_done: Callable[[Utterance], None] | None = None,
        on_frame_sent: Callable[[Utterance], None] | None = None,
        after_tick: Callable[[], Awaitable[None]] | None = None,
        congested: Callable[[], bool] | None = None,
        max_catch_up_frames: int = 3,
        max_queued_frames: int = 250,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._send_frame = send_frame
        self._silence = silence
        self.period = period
        self.send_silence = send_silence
        self._on_utterance_done = on_utterance_done
        self._on_frame_sent = on_frame_sent
        self._after_tick = after_tick
        self._congested = congested
        self._max_catch_up = max_catch_up_frames * period
        self.max_queued_frames = max_queued_frames
        self._clock = clock
        self._sleep = sleep
        self._queue: deque[Utterance] = deque()
        self._queued_frames = 0
        self._room_waiters: list[asyncio.Future[None]] = []
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._stopped = False
        self._stopped_event: asyncio.Event | None = None
        self.failure: BaseException | None = None
        """Why ``tick`` failed (the shared clock stops a pacer whose tick raised)."""
        self.stats = PacerStats()
        # Sees every frame right after it was sent (a call recording): cheap and synchronous.
        self.tap: Callable[[bytes], None] | None = None

    # --- producer side ---

    def open_utterance(self, utterance_id: str) -> Utterance:
        utterance = Utterance(utterance_id)
        self._queue.append(utterance)
        return utterance

    def extend(self, utterance: Utterance, frames: Iterable[bytes]) -> None:
        before = len(utterance._frames)
        utterance._frames.extend(frames)
        added = len(utterance._frames) - before
        utterance.frames_queued += added
        self._queued_frames += added

    def finish(self, utterance: Utterance) -> None:
        """No more frames will be added; the done hook runs after its last frame is sent."""
        utterance.complete = True

    @property
    def queued_frames(self) -> int:
        """Frames waiting to be sent, over all queued utterances."""
        return self._queued_frames

    @property
    def utterances(self) -> tuple[Utterance, ...]:
        return tuple(self._queue)

    async def wait_for_room(self) -> None:
        """Wait until fewer than ``max_queued_frames`` frames are queued (back-pressure)."""
        while self._queued_frames >= self.max_queued_frames and not self._stopped:
            waiter = asyncio.get_running_loop().create_future()
            self._room_waiters.append(waiter)
            await waiter

    def clear(self) -> list[Utterance]:
        """Drop every queued utterance (barge-in) and return them, so the caller can account."""
        dropped = list(self._queue)
        self._queue.clear()
        self.stats.frames_cleared += self._queued_frames
        self._queued_frames = 0
        self._wake_producers()
        return dropped

    # --- flow control ---

    def xoff(self) -> None:
        if self._flowing.is_set():
            self.stats.xoff_count += 1
        self._flowing.clear()

    def xon(self) -> None:
        self._flowing.set()

    @property
    def paused(self) -> bool:
        return not self._flowing.is_set()

    def stopped(self) -> bool:
        return self._stopped

    def stop(self, failure: BaseException | None = None) -> None:
        """Send nothing more; ``run()`` returns at its next tick (idempotent)."""
        if failure is not None and self.failure is None and not self._stopped:
            self.failure = failure
        self._stopped = True
        self._flowing.set()
        if self._stopped_event is not None:
            self._stopped_event.set()
        self._wake_producers()

    async def wait_stopped(self) -> None:
        """Return once ``stop()`` was called."""
        if self._stopped:
            return
        if self._stopped_event is None:
            self._stopped_event = asyncio.Event()
        await self._stopped_event.wait()

    # --- the loop ---

    async def run(self) -> None:
        """Send frames on the pacer's own schedule until ``stop()``.

        Exceptions from ``send_frame``, the hooks and ``after_tick`` propagate."""
        clock, period = self._clock, self.period
        deadline = clock()
        while not self.stopped():
            now = clock()
            if deadline > now:
                await self._sleep(deadline - now)
                if self.stopped():
                    break
                now = clock()
            if not self._flowing.is_set():
                await self._flowing.wait()
                deadline = clock()  # fresh schedule: Asterisk's queue is still ~800 deep
                continue
            lateness = now - deadline
            if lateness > self._max_catch_up:
                self.stats.schedule_resets += 1
                deadline = now
            self.tick(lateness)
            if self._after_tick is not None:
                await self._after_tick()
            deadline += period

    def tick(self, lateness: float) -> None:
        """One frame slot, ``lateness`` seconds after its deadline: send the next frame (or
        silence), unless stopped or paused by XOFF."""
        if self._stopped or not self._flowing.is_set():
            return
        if self._congested is not None and self._congested():
            self.stats.congested_ticks += 1  # back-pressure: the frame waits for the next slot
            return
        self._send_next(lateness)

    def _send_next(self, lateness: float) -> None:
        head = self._queue[0] if self._queue else None
        while head is not None and head.complete and not head._frames:
            # An empty finished utterance (or one ended by a flush race): report it and move on.
            self._queue.popleft()
            if self._on_utterance_done is not None:
                self._on_utterance_done(head)
            head = self._queue[0] if self._queue else None
        if head is None or not head._frames:
            if head is not None:
                self.stats.underruns += 1
            if self.send_silence:
                self._send_frame(self._silence)
                if self.tap is not None:
                    self.tap(self._silence)
                self.stats.silence_frames += 1
                self.stats.record(lateness)
            return
        frame = head._frames.popleft()
        self._queued_frames -= 1
        if self._room_waiters and self._queued_frames < self.max_queued_frames:
            self._wake_producers()
        self._send_frame(frame)
        if self.tap is not None:
            self.tap(frame)
        head.frames_sent += 1
        self.stats.speech_frames += 1
        self.stats.record(lateness)
        if self._on_frame_sent is not None:
            self._on_frame_sent(head)
        if head.complete and not head._frames and self._queue and self._queue[0] is head:
            self._queue.popleft()
            if self._on_utterance_done is not None:
                self._on_utterance_done(head)

    def _wake_producers(self) -> None:
        waiters, self._room_waiters = self._room_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
