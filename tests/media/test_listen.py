"""ListenTap: one call's two sides fanned out to listeners; a slow listener never stalls the
call (bounded queue, the oldest frame dropped, counted); the call's end ends every listener."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from media.listen_frames import parse_frame
from voicedock.media.listen_tap import (
    ASSISTANT,
    CALLER,
    HEADER,
    ListenEnded,
    ListenTap,
)

pytestmark = pytest.mark.unit

FRAME = np.arange(160, dtype=np.int16)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_frames_carry_the_channel_a_sequence_the_time_and_the_samples() -> None:
    clock = Clock()
    tap = ListenTap(8000, clock=clock)
    listener = tap.listen(max_frames=10)
    clock.now += 0.040
    tap.caller(FRAME)
    tap.assistant(FRAME * 2, at=100.060)
    tap.caller(-FRAME)
    frames = [parse_frame(f) for f in listener._frames]
    assert [(c, s, ms) for c, s, ms, _ in frames] == [
        (CALLER, 0, 40),
        (ASSISTANT, 0, 60),
        (CALLER, 1, 40),
    ]
    assert np.array_equal(frames[1][3], FRAME * 2)
    assert np.array_equal(frames[2][3], -FRAME)
    assert len(listener._frames[0]) == HEADER.size + 2 * len(FRAME)


def test_nothing_is_encoded_without_listeners_and_the_owner_hears_when_they_come() -> None:
    changes: list[bool] = []
    tap = ListenTap(8000, on_active=changes.append)
    tap.caller(FRAME)  # nobody listens: dropped at once
    first = tap.listen(4)
    second = tap.listen(4)
    assert changes == [True]
    tap.caller(FRAME)
    assert first.queued == second.queued == 1
    first.close()
    assert changes == [True]
    second.close()
    second.close()  # idempotent
    assert changes == [True, False]
    assert not tap.active


async def test_a_slow_listener_drops_its_oldest_frames_and_never_stalls_the_feed() -> None:
    tap = ListenTap(8000)
    slow = tap.listen(max_frames=5)
    fast = tap.listen(max_frames=5)
    for i in range(1000):  # 20 s of one side, fed synchronously: nobody is waited for
        tap.caller(np.full(160, i, dtype=np.int16))
        if i % 4 == 3:
            await fast.take()  # keeps up
    assert slow.queued == 5
    assert slow.dropped == 995
    assert tap.dropped == 995
    assert fast.dropped == 0
    # What the slow one gets is the present: the last five frames, in order.
    got = [int(parse_frame(f)[3][0]) for f in await slow.take()]
    assert got == [995, 996, 997, 998, 999]
    assert tap.listen(1).queued == 0  # a new listener starts with the present


async def test_the_call_s_end_ends_every_listener_after_its_queued_frames() -> None:
    tap = ListenTap(8000)
    listener = tap.listen(10)
    tap.assistant(FRAME)

    async def drain() -> list[bytes]:
        return [frame async for frame in listener]

    draining = asyncio.create_task(drain())
    await asyncio.sleep(0)
    tap.end("call-ended")
    tap.end("again")
    assert len(await asyncio.wait_for(draining, 1)) == 1
    assert listener.end_reason == "call-ended"
    assert await listener.take() == []
    with pytest.raises(ListenEnded):
        tap.listen(10)


async def test_a_closed_listener_stops_waiting() -> None:
    tap = ListenTap(8000)
    listener = tap.listen(3)
    waiting = asyncio.create_task(listener.take())
    await asyncio.sleep(0)
    listener.close()
    assert await asyncio.wait_for(waiting, 1) == []
    tap.caller(FRAME)  # fed after it left: not queued
    assert listener.queued == 0
