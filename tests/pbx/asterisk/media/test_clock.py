"""The shared media clock on a virtual time source: one tick drives every session's frame."""

from __future__ import annotations

import asyncio
import itertools
import logging
from contextlib import AsyncExitStack
from typing import Any

import pytest

from media.virtual_clock import Recorder
from media.virtual_clock import VirtualClock as VirtualTime
from voicedock.logs import CallIdFilter, call_context
from voicedock.media.pacer import Pacer, PacerHooks
from voicedock.pbx.asterisk.media.clock import MediaClock

pytestmark = pytest.mark.unit

SILENCE = b"\xff" * 4
PER_FRAME: dict[str, Any] = {"low": 0.0, "high": 0.0}  # a frame per period, on time


class Leg(Recorder):
    """A pacer on the clock and what it wrote when."""

    def __init__(self, time: VirtualTime) -> None:
        super().__init__(time)
        self.pacer: Pacer = Pacer(self, SILENCE)


async def run_until(legs: list[Leg], clock: MediaClock, frames: int) -> None:
    async with AsyncExitStack() as stack:
        for leg in legs:
            await stack.enter_async_context(clock.driving(leg.pacer))
        while min(len(leg.sent) for leg in legs) < frames:
            await asyncio.sleep(0)


async def test_one_tick_writes_one_frame_for_every_session_in_order() -> None:
    time = VirtualTime()
    clock = MediaClock(clock=time, sleep=time.sleep, **PER_FRAME)
    legs = [Leg(time) for _ in range(5)]
    order: list[str] = []
    for i, leg in enumerate(legs):
        leg.pacer.heard.tap = lambda _frame, _at, name=f"s{i}": order.append(name)
    await run_until(legs, clock, 50)
    assert order[:10] == ["s0", "s1", "s2", "s3", "s4"] * 2
    for leg in legs:
        gaps = {round(b - a, 6) for a, b in itertools.pairwise(leg.times[:50])}
        assert gaps == {0.020}
    assert time.wakeups <= clock.stats.ticks + 1  # one wake-up per tick, not one per session
    assert not clock.running  # the last session left: the clock's task ended


async def test_sessions_are_spread_over_the_slots_of_a_period() -> None:
    time = VirtualTime()
    clock = MediaClock(clock=time, sleep=time.sleep, **PER_FRAME, slots=4)
    legs = [Leg(time) for _ in range(8)]
    async with AsyncExitStack() as stack:
        for leg in legs:
            await stack.enter_async_context(clock.driving(leg.pacer))
        assert sorted(clock.slot_of(leg.pacer) or 0 for leg in legs) == [0, 0, 1, 1, 2, 2, 3, 3]
        while min(len(leg.sent) for leg in legs) < 20:
            await asyncio.sleep(0)
    for leg in legs:  # one frame per period each, whatever its phase
        assert {round(b - a, 6) for a, b in itertools.pairwise(leg.times[:20])} == {0.020}
    first = sorted({round(leg.times[0] - legs[0].times[0], 6) for leg in legs})
    assert first == [0.0, 0.005, 0.010, 0.015]  # two sessions per 5 ms phase, not one burst


async def test_jitter_does_not_accumulate_on_the_absolute_schedule() -> None:
    time = VirtualTime(jitter=0.003)  # every wake-up 3 ms late
    clock = MediaClock(clock=time, sleep=time.sleep, **PER_FRAME)
    leg = Leg(time)
    await run_until([leg], clock, 500)
    times = leg.times[:500]
    assert times[-1] - times[0] == pytest.approx(499 * 0.020, abs=0.004)
    assert leg.pacer.stats.max_lateness == pytest.approx(0.003)


async def test_a_short_stall_catches_up_and_a_long_one_reanchors() -> None:
    time = VirtualTime()
    time.stall_at = {50: 0.030, 200: 0.200}  # 1.5 frames late once, then 10 frames
    clock = MediaClock(clock=time, sleep=time.sleep, **PER_FRAME, max_catch_up_frames=3)
    leg = Leg(time)
    await run_until([leg], clock, 40)
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(leg.times)]
    assert 0.0 in gaps  # the short stall: the missed frame went out back to back
    long_stall = gaps.index(max(gaps))
    # ... and the frames after it are on the original 20 ms grid again
    assert leg.times[long_stall] - leg.times[0] == pytest.approx(long_stall * 0.020)
    assert max(gaps) == pytest.approx(0.220)  # the long one: no burst, a fresh schedule
    assert clock.stats.schedule_resets == 1


async def test_xoff_skips_a_session_without_touching_the_others() -> None:
    time = VirtualTime()
    clock = MediaClock(clock=time, sleep=time.sleep, **PER_FRAME)
    paused, flowing = Leg(time), Leg(time)
    utterance = paused.pacer.open_utterance("u")
    paused.pacer.extend(utterance, [b"\x01" * 4] * 3)
    paused.pacer.xoff()
    async with clock.driving(paused.pacer), clock.driving(flowing.pacer):
        while len(flowing.sent) < 10:
            await asyncio.sleep(0)
        assert paused.sent == []
        assert paused.pacer.queued_frames == 3  # kept for XON
        paused.pacer.xon()
        while len(paused.sent) < 3:
            await asyncio.sleep(0)
    assert [frame for _, frame in paused.sent[:3]] == [b"\x01" * 4] * 3


async def test_a_failing_session_is_stopped_and_the_clock_goes_on() -> None:
    time = VirtualTime()
    clock = MediaClock(clock=time, sleep=time.sleep, **PER_FRAME)
    good = Leg(time)

    def broken_write(_frame: bytes) -> None:
        raise ConnectionResetError("peer gone")

    broken = Pacer(broken_write, SILENCE)
    async with clock.driving(broken), clock.driving(good.pacer):
        await asyncio.wait_for(broken.wait_stopped(), 1)
        while len(good.sent) < 5:
            await asyncio.sleep(0)
    assert isinstance(broken.failure, ConnectionResetError)


async def test_the_clocks_lines_name_no_call_not_even_the_one_that_started_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The clock's task is the node's, not the first session's: its lines (a later call's
    failing visit, minutes after the first call ended) are not tagged with the first call."""
    time = VirtualTime()
    clock = MediaClock(clock=time, sleep=time.sleep, **PER_FRAME)
    first = Leg(time)

    def broken_write(_frame: bytes) -> None:
        raise ValueError("a broken frame")

    broken = Pacer(broken_write, SILENCE)
    caplog.handler.addFilter(CallIdFilter())
    with call_context("call-outbound-firstcall01"):
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(clock.driving(first.pacer))
            with call_context("call-outbound-latercall02"):
                await stack.enter_async_context(clock.driving(broken))
            await asyncio.wait_for(broken.wait_stopped(), 1)
    [line] = [r for r in caplog.records if "tick failed" in r.getMessage()]
    assert getattr(line, "call_id", None) == "-"


async def test_a_connection_closed_at_hang_up_is_no_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A call that hangs up between two visits of the clock (its websocket closing) is the
    normal end of a call: nothing an operator must look at, and its pacer stops."""
    time = VirtualTime()
    clock = MediaClock(clock=time, sleep=time.sleep, **PER_FRAME)

    def closed(_frame: bytes) -> None:
        raise ConnectionResetError("media websocket is closed")

    hung_up = Pacer(closed, SILENCE)
    caplog.set_level(logging.DEBUG, logger="voicedock.media")
    async with clock.driving(hung_up):
        await asyncio.wait_for(hung_up.wait_stopped(), 1)
    assert isinstance(hung_up.failure, ConnectionResetError)
    assert [r.levelno for r in caplog.records if "media clock" in r.getMessage()] == [logging.DEBUG]


async def test_the_clock_stops_with_its_last_session_and_starts_again() -> None:
    time = VirtualTime()
    clock = MediaClock(clock=time, sleep=time.sleep, **PER_FRAME)
    first = Leg(time)
    await run_until([first], clock, 3)
    assert not clock.running
    assert clock.pacers == 0
    frames_when_detached = len(first.sent)
    second = Leg(time)
    await run_until([second], clock, 3)
    assert not clock.running
    assert len(first.sent) == frames_when_detached  # a detached pacer gets nothing more


async def test_the_shared_clock_is_one_per_event_loop() -> None:
    assert MediaClock.shared() is MediaClock.shared()


class CountingLeg(Leg):
    """A leg whose pacer also counts its batched writes (``flush_writes``)."""

    def __init__(self, time: VirtualTime) -> None:
        super().__init__(time)
        self.writes: list[float] = []
        self.pacer = Pacer(
            self, SILENCE, PacerHooks(flush_writes=lambda: self.writes.append(time.now))
        )


async def test_a_session_writes_five_frames_ahead_once_a_margin_is_left() -> None:
    time = VirtualTime()
    clock = MediaClock(clock=time, sleep=time.sleep, low=0.060, high=0.140)
    leg = CountingLeg(time)
    await run_until([leg], clock, 200)
    lateness = leg.pacer.stats.recent_lateness()[:200]
    assert lateness[0] == pytest.approx(0.0)  # the first visit starts the schedule
    assert max(lateness[8:]) <= -0.040 + 1e-9  # then every frame >= 40 ms before it is due
    assert min(lateness) >= -0.140 - 1e-9  # ... and never more than 140 ms
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(leg.writes[:20])]
    assert set(gaps) == {0.100}  # one write per 100 ms, five frames each
    assert len(leg.sent) <= 8 + 5 * (len(leg.writes) - 1)
    assert clock.stats.ticks >= 10 * (len(leg.writes) - 1)  # visited every tick all the same


async def test_a_late_visit_within_the_margin_is_never_late_for_the_pbx() -> None:
    time = VirtualTime()
    time.stall_at = {30: 0.035}  # one wake-up 35 ms late
    clock = MediaClock(clock=time, sleep=time.sleep, low=0.060, high=0.140)
    leg = CountingLeg(time)
    await run_until([leg], clock, 150)
    assert max(leg.pacer.stats.recent_lateness()[1:150]) < 0  # written ahead all the same
    times = [round(t, 6) for t in leg.times]
    assert times == sorted(times)


async def test_a_session_stopped_by_its_closed_connection_leaves_nothing_for_the_collector() -> (
    None
):
    """The failure a pacer keeps must not hold the clock's frame (its traceback would): the
    pacer and what it writes to (a call's media connection) would wait for a full collection
    after every hang-up between two visits of the clock."""
    import weakref

    from fakes.garbage import cyclic_garbage

    time = VirtualTime()
    clock = MediaClock(clock=time, sleep=time.sleep, **PER_FRAME)

    class Connection:
        def write(self, _frame: bytes) -> None:
            raise ConnectionResetError("media websocket is closed")

    with cyclic_garbage() as garbage:
        connection = Connection()
        hung_up = Pacer(connection.write, SILENCE)
        gone = weakref.ref(hung_up)
        async with clock.driving(hung_up):
            await asyncio.wait_for(hung_up.wait_stopped(), 1)
        assert isinstance(hung_up.failure, ConnectionResetError)
        del hung_up, connection
        assert gone() is None
    assert not garbage.voicedock
