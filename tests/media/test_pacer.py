"""Pacer on a virtual clock: absolute schedule, silence fill, ordering, XOFF/XON, stalls."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools

import numpy as np
import pytest

from media.virtual_clock import Recorder, VirtualClock
from voicedock.media.pacer import Pacer, PacerHooks, Utterance

pytestmark = pytest.mark.unit

SILENCE = b"\xff" * 4


_HOOKS = frozenset(field.name for field in dataclasses.fields(PacerHooks))


def make_pacer(clock: VirtualClock, limit: int, **kwargs: object) -> tuple[Pacer, Recorder]:
    """A pacer on ``clock``: ``kwargs`` are its hooks (``PacerHooks``) and options."""
    recorder = Recorder(clock, limit)
    hooks = PacerHooks(**{k: v for k, v in kwargs.items() if k in _HOOKS})  # type: ignore[arg-type]
    options = {k: v for k, v in kwargs.items() if k not in _HOOKS}
    pacer = Pacer(recorder, SILENCE, hooks, clock=clock, sleep=clock.sleep, **options)  # type: ignore[arg-type]
    recorder.pacer = pacer
    return pacer, recorder


def frames(tag: int, n: int) -> list[bytes]:
    return [bytes([tag, i, 0, 0]) for i in range(n)]


async def test_silence_is_sent_every_20ms_when_idle() -> None:
    clock = VirtualClock()
    pacer, recorder = make_pacer(clock, limit=50)
    await pacer.run()
    assert recorder.frames == [SILENCE] * 50
    times = [t for t, _ in recorder.sent]
    assert times[-1] - times[0] == pytest.approx(49 * 0.020)
    assert pacer.stats.silence_frames == 50
    assert pacer.stats.max_lateness == pytest.approx(0.0)


async def test_schedule_is_absolute_so_jitter_does_not_accumulate() -> None:
    clock = VirtualClock(jitter=0.003)  # every wake-up 3 ms late
    pacer, recorder = make_pacer(clock, limit=500)
    await pacer.run()
    times = [t for t, _ in recorder.sent]
    # A relative sleep(20ms) loop would drift 500 x 3 ms = 1.5 s; the absolute one stays on time.
    assert times[-1] - times[0] == pytest.approx(499 * 0.020, abs=0.004)
    assert pacer.stats.max_lateness == pytest.approx(0.003)
    assert np.percentile(pacer.stats.recent_lateness(), 99) == pytest.approx(0.003)
    assert all(s < 0.020 for s in clock.sleeps[1:])  # it sleeps less to make up for lateness


async def test_speech_in_order_then_silence_and_done_hook_between_utterances() -> None:
    clock = VirtualClock()
    events: list[str] = []

    def done(utterance: Utterance) -> None:
        events.append(f"done:{utterance.id}@{len(recorder.sent)}")

    pacer, recorder = make_pacer(clock, limit=12, on_utterance_done=done)
    first = pacer.open_utterance("a")
    pacer.extend(first, frames(1, 3))
    pacer.finish(first)
    second = pacer.open_utterance("b")
    pacer.extend(second, frames(2, 2))
    pacer.finish(second)
    assert pacer.queued_frames == 5
    await pacer.run()
    assert recorder.frames[:5] == frames(1, 3) + frames(2, 2)
    assert recorder.frames[5:] == [SILENCE] * 7
    assert events == ["done:a@3", "done:b@5"]  # each right after its own last frame
    assert (first.frames_sent, second.frames_sent) == (3, 2)
    assert pacer.queued_frames == 0
    assert pacer.utterances == ()


async def test_unfinished_utterance_underrun_gets_silence_not_the_next_utterance() -> None:
    clock = VirtualClock()
    pacer, recorder = make_pacer(clock, limit=6)
    streaming = pacer.open_utterance("stream")
    pacer.extend(streaming, frames(1, 2))
    later = pacer.open_utterance("later")
    pacer.extend(later, frames(2, 1))
    pacer.finish(later)
    await pacer.run()
    assert recorder.frames == [*frames(1, 2), SILENCE, SILENCE, SILENCE, SILENCE]
    assert pacer.stats.underruns == 4
    assert later.frames_sent == 0


async def test_empty_finished_utterance_reports_done_without_a_frame() -> None:
    clock = VirtualClock()
    done: list[str] = []

    def on_done(utterance: Utterance) -> None:
        done.append(utterance.id)

    pacer, recorder = make_pacer(clock, limit=1, on_utterance_done=on_done)
    pacer.finish(pacer.open_utterance("empty"))
    await pacer.run()
    assert done == ["empty"]
    assert recorder.frames == [SILENCE]


async def test_xoff_stops_sending_keeps_the_queue_and_xon_resumes() -> None:
    clock = VirtualClock()
    pacer, recorder = make_pacer(clock, limit=10)
    utterance = pacer.open_utterance("u")
    pacer.extend(utterance, frames(1, 10))
    pacer.finish(utterance)
    task = asyncio.create_task(pacer.run())
    while len(recorder.sent) < 3:
        await asyncio.sleep(0)
    pacer.xoff()
    assert pacer.paused
    for _ in range(50):
        await asyncio.sleep(0)
    sent_while_off = len(recorder.sent)
    assert sent_while_off <= 4  # at most the frame that was already in flight
    assert pacer.queued_frames == 10 - sent_while_off  # nothing dropped
    pacer.xon()
    await asyncio.wait_for(task, 1)
    assert recorder.frames == frames(1, 10)  # every frame, in order, no silence mixed in
    assert pacer.stats.xoff_count == 1


async def test_long_stall_reanchors_instead_of_bursting_missed_ticks() -> None:
    clock = VirtualClock()
    pacer, recorder = make_pacer(clock, limit=20, max_catch_up_frames=3)

    original_sleep = clock.sleep
    stalled = False

    async def stalling_sleep(seconds: float) -> None:
        nonlocal stalled
        await original_sleep(seconds)
        if len(recorder.sent) == 5 and not stalled:
            stalled = True
            clock.now += 0.200  # the event loop was blocked for 200 ms

    pacer._sleep = stalling_sleep
    await pacer.run()
    times = [t for t, _ in recorder.sent]
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert max(gaps) == pytest.approx(0.220)
    assert min(gaps) > 0.019  # no burst of back-to-back frames after the stall
    assert pacer.stats.schedule_resets == 1
    assert pacer.stats.max_lateness == pytest.approx(0.200)


async def test_short_lateness_catches_up_on_the_original_schedule() -> None:
    clock = VirtualClock()
    pacer, recorder = make_pacer(clock, limit=10, max_catch_up_frames=3)
    original_sleep = clock.sleep

    async def one_late_sleep(seconds: float) -> None:
        await original_sleep(seconds)
        if len(recorder.sent) == 3:
            clock.now += 0.030  # 30 ms late once: 1.5 frames, within the catch-up budget

    pacer._sleep = one_late_sleep
    await pacer.run()
    times = [t - recorder.sent[0][0] for t, _ in recorder.sent]
    assert times[-1] == pytest.approx(9 * 0.020)  # back on the original grid
    assert pacer.stats.schedule_resets == 0


async def test_producers_wait_for_room_and_are_released_as_frames_go_out() -> None:
    clock = VirtualClock()
    pacer, recorder = make_pacer(clock, limit=30, max_queued_frames=5)
    utterance = pacer.open_utterance("u")

    async def produce() -> None:
        for chunk in range(6):
            await pacer.wait_for_room()
            assert pacer.queued_frames < 5
            pacer.extend(utterance, frames(chunk, 2))
        pacer.finish(utterance)

    producer = asyncio.create_task(produce())
    await pacer.run()
    await producer
    assert utterance.frames_sent == 12
    speech = [f for f in recorder.frames if f != SILENCE]
    assert speech == [f for c in range(6) for f in frames(c, 2)]


async def test_clear_returns_dropped_utterances_and_wakes_producers() -> None:
    clock = VirtualClock()
    pacer, _ = make_pacer(clock, limit=1, max_queued_frames=2)
    utterance = pacer.open_utterance("u")
    pacer.extend(utterance, frames(1, 3))
    waiter = asyncio.create_task(pacer.wait_for_room())
    await asyncio.sleep(0)
    assert not waiter.done()
    assert pacer.clear() == [utterance]
    await asyncio.wait_for(waiter, 1)
    assert pacer.queued_frames == 0


async def test_silence_can_be_disabled() -> None:
    clock = VirtualClock()
    pacer, recorder = make_pacer(clock, limit=2, send_silence=False)
    utterance = pacer.open_utterance("u")
    pacer.extend(utterance, frames(1, 2))
    pacer.finish(utterance)
    await pacer.run()
    assert recorder.frames == frames(1, 2)


async def test_lateness_ring_keeps_the_most_recent_values() -> None:
    clock = VirtualClock()
    pacer, _ = make_pacer(clock, limit=1)
    for i in range(5000):
        pacer.stats.record(i / 1e6)
    recent = pacer.stats.recent_lateness()
    assert len(recent) == 4096
    assert recent[0] == pytest.approx(904 / 1e6)
    assert recent[-1] == pytest.approx(4999 / 1e6)


async def test_stop_is_idempotent_and_ends_an_xoff_wait() -> None:
    clock = VirtualClock()
    pacer, _ = make_pacer(clock, limit=10_000)
    pacer.xoff()
    task = asyncio.create_task(pacer.run())
    await asyncio.sleep(0)
    pacer.stop()
    pacer.stop()
    await asyncio.wait_for(task, 1)


async def test_a_congested_connection_skips_its_slot_and_keeps_the_frame() -> None:
    clock = VirtualClock()
    congested = True
    pacer, recorder = make_pacer(clock, limit=100, congested=lambda: congested)
    utterance = pacer.open_utterance("u")
    pacer.extend(utterance, frames(1, 2))
    pacer.tick(0.0)
    pacer.tick(0.0)
    assert recorder.frames == []
    assert pacer.stats.congested_ticks == 2
    assert pacer.queued_frames == 2  # nothing lost
    congested = False
    pacer.tick(0.0)
    assert recorder.frames == frames(1, 1)


async def test_after_tick_runs_after_each_slot_of_its_own_loop() -> None:
    clock = VirtualClock()
    seen: list[int] = []

    async def after_tick() -> None:
        seen.append(len(recorder.sent))

    pacer, recorder = make_pacer(clock, limit=3, after_tick=after_tick)
    await pacer.run()
    assert seen == [1, 2, 3]


async def test_stop_records_the_first_failure_and_wakes_wait_stopped() -> None:
    clock = VirtualClock()
    pacer, _ = make_pacer(clock, limit=1)
    waiter = asyncio.create_task(pacer.wait_stopped())
    await asyncio.sleep(0)
    assert not waiter.done()
    first = ConnectionResetError("gone")
    pacer.stop(first)
    pacer.stop(RuntimeError("later"))
    await asyncio.wait_for(waiter, 1)
    assert pacer.failure is first
    await asyncio.wait_for(pacer.wait_stopped(), 1)  # already stopped: returns at once


def ahead_pacer(
    clock: VirtualClock, *, cut: bool, **kwargs: object
) -> tuple[Pacer, Recorder, list[str]]:
    """A pacer writing 100 ms ahead; ``cut``: the session allows cutting the silence ahead."""
    events: list[str] = []

    def speech_start() -> bool:
        events.append("cut" if cut else "no-cut")
        return cut

    pacer, recorder = make_pacer(clock, limit=None, on_speech_start=speech_start, **kwargs)  # type: ignore[arg-type]
    pacer.low, pacer.high = 0.040, 0.100
    return pacer, recorder, events


async def test_speech_after_silence_cuts_the_silence_ahead_and_is_written_at_once() -> None:
    clock = VirtualClock()
    pacer, recorder, events = ahead_pacer(clock, cut=True)
    pacer.advance(clock.now)
    assert recorder.frames == [SILENCE] * 6  # due now .. now + 100 ms
    clock.now += 0.030
    utterance = pacer.open_utterance("u")
    pacer.extend(utterance, frames(1, 3))
    assert events == ["cut"]
    assert recorder.frames[6:9] == frames(1, 3)  # written now, not behind the silence
    assert recorder.times[6] == clock.now
    assert pacer.stats.silence_cut_frames == 4  # 80 ms of silence were still ahead
    assert pacer.stats.recent_lateness()[6] == pytest.approx(0.0)  # due now


async def test_speech_without_a_cut_follows_the_silence_already_queued() -> None:
    clock = VirtualClock()
    pacer, recorder, events = ahead_pacer(clock, cut=False)
    pacer.advance(clock.now)
    utterance = pacer.open_utterance("u")
    pacer.extend(utterance, frames(1, 3))
    assert events == ["no-cut"]
    assert len(recorder.frames) == 6  # nothing written out of turn
    clock.now += 0.100
    pacer.advance(clock.now)
    assert recorder.frames[6:9] == frames(1, 3)  # right behind the queued silence
    assert pacer.stats.silence_cut_frames == 0


async def test_no_cut_while_speech_written_ahead_is_still_to_be_heard() -> None:
    clock = VirtualClock()
    pacer, recorder, events = ahead_pacer(clock, cut=True)
    first = pacer.open_utterance("a")
    pacer.extend(first, frames(1, 2))
    pacer.finish(first)
    pacer.advance(clock.now)  # a's two frames, then silence, all ahead
    clock.now += 0.010
    second = pacer.open_utterance("b")
    pacer.extend(second, frames(2, 1))
    assert events == []  # a is still playing at the PBX: nothing may be flushed
    clock.now += 0.100
    pacer.advance(clock.now)
    assert frames(2, 1)[0] in recorder.frames


async def test_the_tap_hears_a_frame_at_its_due_time_and_never_what_was_cleared() -> None:
    clock = VirtualClock()
    pacer, _recorder, _events = ahead_pacer(clock, cut=False)
    heard: list[tuple[bytes, float | None]] = []
    pacer.heard.tap = lambda frame, at: heard.append((frame, at))
    start = clock.now
    utterance = pacer.open_utterance("u")
    pacer.extend(utterance, frames(1, 10))
    pacer.advance(clock.now)  # six frames written ahead
    assert [f for f, _ in heard] == [frames(1, 1)[0]]  # only the one due now is heard
    clock.now += 0.045
    pacer.clear()  # barge-in: frames due after now were flushed at the PBX
    assert [f for f, _ in heard] == frames(1, 3)
    assert [at for _, at in heard] == pytest.approx([start, start + 0.020, start + 0.040])
    pacer.restart()
    clock.now += 0.200
    pacer.advance(clock.now)
    assert all(f == SILENCE for f, _ in heard[3:])  # only what was written after the restart


async def test_restart_writes_silence_at_once_on_a_fresh_schedule() -> None:
    clock = VirtualClock()
    pacer, recorder, _ = ahead_pacer(clock, cut=False)
    pacer.advance(clock.now)
    clock.now += 0.050
    pacer.clear()
    pacer.restart()
    assert len(recorder.frames) == 12  # the next 100 ms again, from now
    assert recorder.times[6:] == [clock.now] * 6


async def test_silence_behind_speech_waits_so_the_next_audio_follows_it_directly() -> None:
    clock = VirtualClock()
    pacer, recorder, events = ahead_pacer(clock, cut=True)
    first = pacer.open_utterance("a")
    pacer.extend(first, frames(1, 5))
    pacer.finish(first)
    pacer.advance(clock.now)
    assert recorder.frames == frames(1, 5)  # 100 ms of speech covers the margin: no silence yet
    clock.now += 0.010
    second = pacer.open_utterance("b")
    pacer.extend(second, frames(2, 2))  # ready while the first still plays
    assert recorder.frames[5:] == frames(2, 1)  # straight behind it, written at once
    assert events == []  # nothing to cut
    assert recorder.times[5] == clock.now
    clock.now += 0.080
    pacer.advance(clock.now)
    assert recorder.frames[6:] == frames(2, 2)[1:]  # the rest of it, still no silence
    clock.now += 0.040
    pacer.advance(clock.now)  # the margin runs out: silence now
    assert recorder.frames[7:] == [SILENCE] * 5
    assert max(pacer.stats.recent_lateness()) <= 0
