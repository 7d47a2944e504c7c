"""``GapFiller`` and ``GapWatch`` on a virtual clock: a caller stream that stops sending is
filled with silence on the wall clock, from when it stopped, until frames come again."""

from __future__ import annotations

import contextvars
import heapq
import itertools
import logging
from collections.abc import Callable

import pytest

from voicedock.media.gap_filler import GAP_AFTER, GapFiller, GapFrame, GapWatch

pytestmark = pytest.mark.unit

PERIOD = 0.020
SILENCE = b"\xff" * 160
CALL = contextvars.ContextVar("call", default="none")


class VirtualTimers:
    """The event loop's clock and ``call_at``, moved by hand (``run_until``)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._heap: list[tuple[float, int, _Timer]] = []
        self._order = itertools.count()
        self.late_by = 0.0  # every timer fires this much after its time

    def time(self) -> float:
        return self.now

    def call_at(
        self, when: float, callback: Callable[[], None], *, context: contextvars.Context
    ) -> _Timer:
        timer = _Timer(callback, context)
        heapq.heappush(self._heap, (when, next(self._order), timer))
        return timer

    @property
    def pending(self) -> int:
        return sum(not t.cancelled for _, _, t in self._heap)

    def run_until(self, end: float, on_each: Callable[[float], None] | None = None) -> None:
        """Fire every timer due up to ``end`` in order; ``on_each(now)`` before each one."""
        while self._heap and self._heap[0][0] + self.late_by <= end + 1e-9:
            when, _, timer = heapq.heappop(self._heap)
            self.now = max(self.now, when + self.late_by)
            if timer.cancelled:
                continue
            if on_each is not None:
                on_each(self.now)
            timer.context.run(timer.callback)
        self.now = max(self.now, end)


class _Timer:
    def __init__(self, callback: Callable[[], None], context: contextvars.Context) -> None:
        self.callback = callback
        self.context = context
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Stream:
    """A caller stream's owner: counts its real frames, keeps what it delivers, in order."""

    def __init__(self, watch: GapWatch, timers: VirtualTimers) -> None:
        self.timers = timers
        self.received = 0
        self.delivered: list[tuple[float, bytes]] = []
        self.contexts: list[str] = []
        self.filler = GapFiller(
            self.fill, SILENCE, lambda: self.received, period=PERIOD, watch=watch
        )

    def fill(self, frame: bytes) -> None:
        self.delivered.append((self.timers.now, frame))
        self.contexts.append(CALL.get())

    def frame(self) -> None:
        """A real frame from the caller, now."""
        self.received += 1
        self.delivered.append((self.timers.now, b"\x42" * 160))

    def arriving(self, times: list[float]) -> Callable[[float], None]:
        """What ``run_until(on_each=...)`` calls: the real frames due by then arrive."""
        pending = sorted(times)

        def arrivals(now: float) -> None:
            while pending and pending[0] <= now:
                pending.pop(0)
                self.frame()

        return arrivals

    @property
    def silence(self) -> list[float]:
        return [t for t, f in self.delivered if f == SILENCE]


@pytest.fixture
def timers() -> VirtualTimers:
    return VirtualTimers()


@pytest.fixture
def watch(timers: VirtualTimers) -> GapWatch:
    return GapWatch(timers)


def test_a_stream_that_never_sends_is_silence_from_when_listening_started(
    timers: VirtualTimers, watch: GapWatch
) -> None:
    stream = Stream(watch, timers)
    start = timers.now
    with stream.filler.listening():
        timers.run_until(start + GAP_AFTER - 0.03)
        assert stream.silence == []  # a pause shorter than the threshold is not a gap yet
        timers.run_until(start + GAP_AFTER + 0.001)
        # The whole gap at once, from the start: 100 ms is five frames.
        assert len(stream.silence) == 5
        timers.run_until(start + 2.0)
        # Then one frame per period: as many frames as wall-clock time, within one visit.
        assert abs(len(stream.silence) - 2.0 / PERIOD) <= 1
        assert stream.filler.gaps == 1
        assert stream.filler.filled_frames == len(stream.silence)
        # Told apart from the caller's own frames where it matters (a recording).
        assert all(isinstance(f, GapFrame) for t, f in stream.delivered)
    filled = len(stream.silence)
    timers.run_until(start + 3.0)
    assert len(stream.silence) == filled  # nobody listens: nothing is filled
    assert watch.streams == 0
    assert timers.pending == 0  # the watch's timer is gone with its last stream


def test_a_stream_that_sends_is_never_filled_even_with_jitter(
    timers: VirtualTimers, watch: GapWatch
) -> None:
    stream = Stream(watch, timers)
    # Frames 20 ms apart on average, each up to 40 ms early or late (bursts of two or three).
    offsets = [0.0, 0.035, -0.02, 0.04, 0.0, -0.04, 0.03, 0.01]
    due = [timers.now + 0.02 * (i + 1) + offsets[i % len(offsets)] for i in range(200)]
    arrivals = stream.arriving(due)
    with stream.filler.listening():
        timers.run_until(due[-1] - 0.05, on_each=arrivals)
    assert stream.silence == []
    assert stream.filler.gaps == 0


def test_a_gap_after_speech_is_filled_from_when_the_speech_stopped(
    timers: VirtualTimers, watch: GapWatch
) -> None:
    stream = Stream(watch, timers)
    start = timers.now
    sent = [start + 0.02 * (i + 1) for i in range(50)]  # one second of speech, then nothing
    last = sent[-1]
    arrivals = stream.arriving(sent)
    with stream.filler.listening():
        timers.run_until(last + GAP_AFTER - 0.03, on_each=arrivals)
        assert stream.silence == []
        timers.run_until(last + GAP_AFTER + PERIOD + 0.001, on_each=arrivals)
        first = stream.silence
        assert 5 <= len(first) <= 6  # what was missed since the last frame, at once
        for elapsed in (0.45, 0.8, 1.5):
            timers.run_until(last + elapsed)
            # Silence since the last frame as long as the wall clock says, within two frames: an
            # endpointing delay of ``elapsed`` is met ``elapsed`` after the caller's last word.
            assert abs(len(stream.silence) * PERIOD - elapsed) <= 0.041, (elapsed, stream.silence)


def test_frames_that_come_again_end_the_gap_and_the_next_gap_is_timed_afresh(
    timers: VirtualTimers, watch: GapWatch
) -> None:
    stream = Stream(watch, timers)
    start = timers.now
    with stream.filler.listening():
        timers.run_until(start + 0.5)  # 0.5 s of nothing: filled
        filled = len(stream.silence)
        assert 24 <= filled <= 25
        # A burst: the frames of a network stall come late, after their time was filled.
        for _ in range(10):
            stream.frame()
        resumed = timers.now
        for step in range(1, 26):  # then half a second of frames in time
            timers.run_until(resumed + 0.02 * step)
            stream.frame()
        assert len(stream.silence) == filled  # nothing filled while frames come
        # The burst put the stream 200 ms ahead of the clock; the next gap is filled from the
        # wall clock all the same: no delay carries over.
        stopped = timers.now
        timers.run_until(stopped + 0.6)
        refill = len(stream.silence) - filled
        assert abs(refill * PERIOD - 0.6) <= 0.041, refill
        assert stream.filler.gaps == 2
    real = [f for _, f in stream.delivered if f != SILENCE]
    assert len(real) == 35  # every real frame went through, none held back or dropped


def test_a_held_up_event_loop_fills_the_time_it_missed_and_restarts_its_schedule(
    timers: VirtualTimers, watch: GapWatch
) -> None:
    stream = Stream(watch, timers)
    start = timers.now
    with stream.filler.listening():
        timers.run_until(start + 0.2)
        ticks = watch.stats.ticks
        timers.late_by = 0.5  # the next timer fires half a second late
        timers.run_until(start + 0.75)
        timers.late_by = 0.0
        assert watch.stats.ticks == ticks + 1  # one visit, not the 25 it missed in a row
        assert len(stream.silence) == 10  # that late visit judges nothing (frames may wait)
        timers.run_until(start + 0.75 + PERIOD)
        assert abs(len(stream.silence) * PERIOD - 0.77) <= 0.041  # the next one fills it all
        timers.run_until(start + 1.0)
        assert abs(len(stream.silence) * PERIOD - 1.0) <= 0.041


def test_frames_a_held_up_loop_kept_waiting_are_not_a_gap(
    timers: VirtualTimers, watch: GapWatch
) -> None:
    """The caller speaks without a pause; the node's loop is held up 300 ms. The frames sent
    meanwhile are read just after the watch's late visit: nothing is filled, so no silence
    goes into the middle of the caller's words."""
    stream = Stream(watch, timers)
    start = timers.now
    sent = [start + 0.02 * (i + 1) for i in range(100)]
    with stream.filler.listening():
        timers.run_until(
            start + 0.5, on_each=stream.arriving([t for t in sent if t <= 0.5 + start])
        )
        ticks = watch.stats.ticks
        timers.late_by = 0.3
        timers.run_until(start + 0.85)  # the late visit: the frames since 0.5 s not read yet
        timers.late_by = 0.0
        assert watch.stats.ticks == ticks + 1
        for _ in (t for t in sent if start + 0.5 < t <= timers.now):
            stream.frame()  # read once the loop runs again
        timers.run_until(sent[-1], on_each=stream.arriving([t for t in sent if t > timers.now]))
    assert stream.silence == []
    assert stream.filler.gaps == 0


def test_a_loop_held_up_again_and_again_still_fills_a_silent_stream(
    timers: VirtualTimers, watch: GapWatch
) -> None:
    stream = Stream(watch, timers)
    start = timers.now
    with stream.filler.listening():
        timers.late_by = 0.05  # every visit two and a half periods late
        timers.run_until(start + 1.0)
    assert abs(len(stream.silence) * PERIOD - 1.0) <= 0.1
    assert stream.filler.gaps == 1


def test_one_watch_visits_every_stream_and_stops_with_the_last(
    timers: VirtualTimers, watch: GapWatch
) -> None:
    quiet, talking = Stream(watch, timers), Stream(watch, timers)
    start = timers.now
    with quiet.filler.listening(), talking.filler.listening():
        assert watch.streams == 2
        assert timers.pending == 1  # one timer for both
        for step in range(1, 26):
            timers.run_until(start + 0.02 * step)
            talking.frame()
        assert abs(len(quiet.silence) * PERIOD - 0.5) <= 0.041
        assert talking.silence == []
        ticks = watch.stats.ticks
        assert abs(ticks - 25) <= 1
        assert watch.stats.visits == 2 * ticks
    assert watch.streams == 0
    assert timers.pending == 0


def test_stop_ends_filling_for_good(timers: VirtualTimers, watch: GapWatch) -> None:
    stream = Stream(watch, timers)
    start = timers.now
    with stream.filler.listening():
        timers.run_until(start + 0.3)
        stream.filler.stop()
        filled = len(stream.silence)
        timers.run_until(start + 1.0)
        assert len(stream.silence) == filled
        assert not stream.filler.active
        with stream.filler.listening():  # a stopped stream is not listened to again
            timers.run_until(start + 1.5)
        assert len(stream.silence) == filled
    stream.filler.stop()  # idempotent
    assert timers.pending == 0


def test_listening_blocks_may_overlap_the_last_one_stops_it(
    timers: VirtualTimers, watch: GapWatch
) -> None:
    stream = Stream(watch, timers)
    outer = stream.filler.listening()
    outer.__enter__()
    with stream.filler.listening():
        assert stream.filler.active
    assert stream.filler.active  # the outer block still listens
    outer.__exit__(None, None, None)
    assert not stream.filler.active
    assert watch.streams == 0


def test_a_stream_whose_fill_fails_is_stopped_the_others_go_on(
    timers: VirtualTimers, watch: GapWatch, caplog: pytest.LogCaptureFixture
) -> None:
    good = Stream(watch, timers)

    def broken(frame: bytes) -> None:
        raise RuntimeError("the consumer broke")

    bad = GapFiller(broken, SILENCE, lambda: 0, period=PERIOD, watch=watch)
    start = timers.now
    with (
        caplog.at_level(logging.WARNING, "voicedock.media"),
        bad.listening(),
        good.filler.listening(),
    ):
        timers.run_until(start + 0.5)
        assert not bad.active
        assert watch.streams == 1
        assert abs(len(good.silence) * PERIOD - 0.5) <= 0.041
    assert "the consumer broke" in caplog.text


def test_silence_is_handed_over_in_the_context_listening_started_in(
    timers: VirtualTimers, watch: GapWatch
) -> None:
    stream = Stream(watch, timers)

    def listen() -> None:
        CALL.set("call-1")
        with stream.filler.listening():
            timers.run_until(timers.now + 0.3)

    contextvars.copy_context().run(listen)
    assert stream.contexts
    assert set(stream.contexts) == {"call-1"}


def test_a_stream_of_40_ms_frames_is_filled_with_40_ms_frames(
    timers: VirtualTimers, watch: GapWatch
) -> None:
    frames: list[bytes] = []
    filler = GapFiller(frames.append, b"\xff" * 320, lambda: 0, period=0.040, watch=watch)
    start = timers.now
    with filler.listening():
        timers.run_until(start + 1.0)
    assert abs(len(frames) * 0.040 - 1.0) <= 0.04


@pytest.mark.parametrize(("period", "after"), [(0.0, 0.1), (0.02, 0.0)])
def test_a_filler_needs_a_positive_period_and_threshold(
    watch: GapWatch, period: float, after: float
) -> None:
    with pytest.raises(ValueError, match="positive"):
        GapFiller(lambda _: None, SILENCE, lambda: 0, period=period, after=after, watch=watch)
