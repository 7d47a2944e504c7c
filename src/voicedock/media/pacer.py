"""Real-time output pacing for one media leg.

Asterisk re-times what we send: chan_websocket plays its queue out one frame per 20 ms on its
own timer, but it sends *nothing* to the trunk while that queue is empty. So the pacer keeps
one ABSOLUTE schedule of frame due times (``due += period``, never ``sleep(period)``, so
scheduling error does not accumulate) and hands over exactly one frame per due time: speech
when it is ready, silence otherwise.

Two ways to drive it:

* ``advance(now)`` (Asterisk's process-wide ``MediaClock``, ``pbx/asterisk/media/clock.py``,
  every 20 ms):
  once no more than ``low`` is written beyond ``now``, write every frame due up to
  ``now + high`` at once, so Asterisk's queue always holds the next frames and one visit's
  writes go out as one system call (``flush_writes``). Silence is not written straight behind
  speech while the speech still covers ``low``: audio ready before then follows the speech
  directly (``extend`` writes it at once). Frames written early are not yet heard: what
  depends on hearing takes the frame's due time (``on_frame_sent``; the recording's tap,
  ``heard``: ``media/heard_frames.py``), a barge-in ``clear()`` + FLUSH_MEDIA drops them at
  Asterisk and ``restart()`` starts a fresh schedule. When speech starts while only silence
  is queued ahead at Asterisk, ``on_speech_start`` may cut that silence (FLUSH_MEDIA; the
  session writes the marks still queued there again) and the speech is written at once, so
  writing ahead adds no delay to a reply. Speech ready in the last ``low`` of earlier speech,
  after silence was written behind it, follows that silence.
* ``tick(lateness)`` / ``run()``: one frame per call on the pacer's own loop, for a leg not on
  the shared clock (FreeSWITCH's virtual clock); its ``after_tick`` hook sends what the tick
  produced.

Speech is queued as ``Utterance`` objects, played strictly in order. An utterance that is still
being produced (streaming TTS) but has no frame ready gets silence for that slot (an underrun),
not the next utterance. When the last frame of a finished utterance has been sent the
``on_utterance_done`` hook runs *before* the next frame, so a MARK_MEDIA sent there sits exactly
between the two utterances in Asterisk's queue.

Flow control: on MEDIA_XOFF the pacer stops sending (silence included); nothing is dropped, the
queue keeps growing and producers are slowed by ``wait_for_room()``. On MEDIA_XON it resumes on a
fresh schedule. A ``congested`` connection (its transport still holds unsent frames) skips the
visit the same way, without blocking the clock. After a stall longer than ``max_catch_up_frames``
the schedule is re-anchored instead of bursting the missed frames, which would only add
permanent latency in Asterisk's queue. The clock and sleep are injectable so the behaviour is
tested on a virtual clock.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from voicedock.media.heard_frames import HeardFrames

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


@dataclass(slots=True)
class TickStats:
    """A timer loop's work (the clock's, the gap watch's): its ticks, and the time spent inside
    them summed, its share of a core."""

    ticks: int = 0
    busy_seconds: float = 0.0


class PacerStats:
    """Counters plus a ring of the most recent per-frame lateness values (seconds): a frame's
    lateness is when it was written minus its due time, negative when written ahead."""

    __slots__ = (
        "_lateness",
        "congested_ticks",
        "first_speech_written",
        "frames_cleared",
        "frames_sent",
        "lateness_total",
        "max_lateness",
        "schedule_resets",
        "silence_cut_frames",
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
        self.silence_cut_frames = 0
        """Silence sent ahead and cut at Asterisk so that speech starts at once."""
        self.first_speech_written: float | None = None
        """``time.monotonic()`` when the first speech frame was written (whatever the pacer's
        own clock): the call's first audio (``Call.timings``)."""
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


@dataclass(frozen=True, slots=True)
class PacerHooks:
    """What a pacer tells its owner and asks it (each ``None``: nothing to tell or ask).

    ``on_utterance_done``: an utterance was sent to its end (or cut); ``on_frame_sent``: a
    frame of an utterance went out, at its due time; ``after_tick``: awaited after each tick
    (outside the clock's visit); ``congested``: the connection has not taken what was written
    (the frame waits for the next visit); ``flush_writes``: after each visit's writes;
    ``on_speech_start``: speech follows silence written ahead, ``True`` when the owner cut
    that silence (the speech goes out at once)."""

    on_utterance_done: Callable[[Utterance], None] | None = None
    on_frame_sent: Callable[[Utterance, float], None] | None = None
    after_tick: Callable[[], Awaitable[None]] | None = None
    congested: Callable[[], bool] | None = None
    flush_writes: Callable[[], None] | None = None
    on_speech_start: Callable[[], bool] | None = None


NO_HOOKS: Final = PacerHooks()


class Pacer:
    """Sends one frame per period to ``send_frame``; see the module docstring."""

    high: float
    """``advance()`` writes up to ``now + high`` (set by the clock that drives the pacer)."""
    low: float
    """``advance()`` writes once no more than this is written beyond ``now``."""
    heard: HeardFrames
    """Its ``tap`` sees every frame when the caller hears it (a call recording)."""

    def __init__(
        self,
        send_frame: Callable[[bytes], None],
        silence: bytes,
        hooks: PacerHooks = NO_HOOKS,
        *,
        period: float = FRAME_PERIOD,
        send_silence: bool = True,
        max_catch_up_frames: int = 3,
        max_queued_frames: int = 250,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._send_frame = send_frame
        self._silence = silence
        self.period = period
        self.send_silence = send_silence
        self._hooks = hooks
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
        self.high = self.low = 0.0  # the clock that drives the pacer sets them
        self._due: float | None = None  # due time of the next frame ``advance()`` writes
        self._speech_until = -math.inf  # due time right after the last speech frame written
        self.heard = HeardFrames()

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
        if added and not before and self._queue[0] is utterance:
            self._start_speech()

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
        self.heard.drop(self._clock())  # written ahead, flushed at the PBX: never heard
        self._wake_producers()
        return dropped

    def restart(self) -> None:
        """A fresh schedule from now (the PBX dropped what was written ahead: FLUSH_MEDIA),
        and the frames due at once written now, so the stream does not pause."""
        self._due = None
        self._speech_until = -math.inf
        if self.high > 0:
            self._advance_now(self._clock())

    # --- flow control ---

    def xoff(self) -> None:
        if self._flowing.is_set():
            self.stats.xoff_count += 1
        self._flowing.clear()

    def xon(self) -> None:
        if not self._flowing.is_set():
            self._due = None  # fresh schedule: Asterisk's queue is still ~800 deep
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
        if not self._stopped:
            self.heard.drop(self._clock())
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
            self.tick(lateness, deadline)
            if self._hooks.after_tick is not None:
                await self._hooks.after_tick()
            deadline += period

    def tick(self, lateness: float, due: float | None = None) -> None:
        """One frame slot, ``lateness`` seconds after its deadline ``due`` (default: now minus
        ``lateness``): send the next frame (or silence), unless stopped or paused by XOFF."""
        if not self._may_send():
            return
        self._send_next(lateness, self._clock() - lateness if due is None else due)

    def advance(self, now: float, anchor: float | None = None, *, force: bool = False) -> None:
        """The clock's visit: once no more than ``low`` is written beyond ``now`` (or when
        ``force``d), write every frame due up to ``now + high``; a first visit starts the
        schedule at ``anchor`` (default ``now``). Silence is not written straight behind
        speech while ``low`` is still covered, so audio that comes next can follow the speech
        directly. What one visit writes is taken by ``flush_writes`` in one go."""
        self.heard.release(now)
        due = self._due
        if due is not None and not force and due > now + self.low + 1e-6:
            return  # enough written ahead: nothing to do on this visit
        if not self._may_send():
            return
        if due is None:
            due = now if anchor is None else anchor
        elif now - due > self._max_catch_up:
            self.stats.schedule_resets += 1
            due = now
        horizon = now + self.high + 1e-6
        keep = now + self.low + 1e-6
        period = self.period
        spoke = False
        try:
            while due <= horizon and not self._stopped:
                if spoke and not self._queued_frames and due > keep:
                    break  # after speech: silence only once it is needed
                spoke = self._send_next(now - due, due) or spoke
                due += period
        finally:
            self._due = due
            if self._hooks.flush_writes is not None:
                self._hooks.flush_writes()

    def _may_send(self) -> bool:
        if self._stopped or not self._flowing.is_set():
            return False
        if self._hooks.congested is not None and self._hooks.congested():
            self.stats.congested_ticks += 1  # back-pressure: the frame waits for the next slot
            return False
        return True

    def _start_speech(self) -> None:
        """Frames are ready for the head utterance, which had none: write them now. Straight
        behind the speech written last if nothing followed it yet; if silence did and that
        speech has been heard (due a frame or more ago), cut the silence (if the session can)
        instead of queueing behind it."""
        due = self._due
        if self.high <= 0 or due is None or self._stopped or not self._flowing.is_set():
            return
        now = self._clock()
        if due <= self._speech_until + 1e-6:
            self._advance_now(now, force=True)  # continues the speech written last
            return
        ahead_frames = round((due - now) / self.period)
        if (
            self._hooks.on_speech_start is None
            or ahead_frames < 1
            or self._speech_until + self.period > now
            or not self._may_send()
            or not self._hooks.on_speech_start()
        ):
            return
        self.stats.silence_cut_frames += ahead_frames
        self.heard.drop(now)  # silence only: cut, never heard
        self._due = None
        self._advance_now(now)

    def _advance_now(self, now: float, *, force: bool = False) -> None:
        """``advance`` outside the clock's visit: a failure stops the pacer as the clock would."""
        try:
            self.advance(now, force=force)
        except Exception as exc:  # noqa: BLE001 - the session ends as broken, see stop()
            self.stop(exc)

    def _send_next(self, lateness: float, due: float) -> bool:
        """Send the frame due at ``due``; True if it was speech."""
        head = self._queue[0] if self._queue else None
        while head is not None and head.complete and not head._frames:
            # An empty finished utterance (or one ended by a flush race): report it and move on.
            self._queue.popleft()
            if self._hooks.on_utterance_done is not None:
                self._hooks.on_utterance_done(head)
            head = self._queue[0] if self._queue else None
        if head is None or not head._frames:
            if head is not None:
                self.stats.underruns += 1
            if self.send_silence:
                self._send_frame(self._silence)
                if self.heard.tap is not None:
                    self.heard.written(self._silence, due, lateness, scheduled=self.high > 0)
                self.stats.silence_frames += 1
                self.stats.record(lateness)
            return False
        frame = head._frames.popleft()
        self._queued_frames -= 1
        if self._room_waiters and self._queued_frames < self.max_queued_frames:
            self._wake_producers()
        self._send_frame(frame)
        if self.stats.first_speech_written is None:
            self.stats.first_speech_written = time.monotonic()
        if self.heard.tap is not None:
            self.heard.written(frame, due, lateness, scheduled=self.high > 0)
        self._speech_until = due + self.period
        head.frames_sent += 1
        self.stats.speech_frames += 1
        self.stats.record(lateness)
        if self._hooks.on_frame_sent is not None:
            self._hooks.on_frame_sent(head, due)
        if head.complete and not head._frames and self._queue and self._queue[0] is head:
            self._queue.popleft()
            if self._hooks.on_utterance_done is not None:
                self._hooks.on_utterance_done(head)
        return True

    def _wake_producers(self) -> None:
        waiters, self._room_waiters = self._room_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
