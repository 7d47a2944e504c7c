"""The fake channel's playout clock models what the lab FreeSWITCH does with queued files."""

from __future__ import annotations

import numpy as np
import pytest

from pbx.freeswitch.fake_playout import ChannelPlayout

pytestmark = pytest.mark.unit

RATE = 8000


class Clock:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


def tone(seconds: float) -> bytes:
    return (np.ones(int(RATE * seconds)) * 8000).astype("<i2").tobytes()


def test_broadcast_files_are_heard_with_lead_frames_of_silence_between_them() -> None:
    clock = Clock()
    playout = ChannelPlayout(RATE, clock)
    for n in range(3):
        playout.queue(f"/t/{n}.r8", tone(0.4), lead_frames=5)  # uuid_broadcast
    clock.now += 5
    heard = np.frombuffer(playout.heard(), dtype="<i2")
    assert len(heard) == int(RATE * (3 * 0.4 + 2 * 0.1))  # two 100 ms holes
    assert not heard[int(RATE * 0.45) : int(RATE * 0.45) + 8].any()


def test_queued_playbacks_are_back_to_back_and_a_hang_up_cuts_the_rest() -> None:
    clock = Clock()
    playout = ChannelPlayout(RATE, clock)
    for n in range(3):
        playout.queue(f"/t/{n}.r8", tone(0.4), lead_frames=0)  # sendmsg playback
    clock.now += 1.0
    playout.hang_up()
    clock.now += 5
    assert playout.heard() == tone(1.0)


def test_deleted_files_not_yet_started_are_skipped_and_break_all_drops_the_queue() -> None:
    clock = Clock()
    playout = ChannelPlayout(RATE, clock)
    for n in range(3):
        playout.queue(f"/t/{n}.r8", tone(0.4), lead_frames=0)
    clock.now += 0.5  # the second file is playing
    playout.files_deleted()  # uuid_audio_stream stop: the third is gone
    clock.now += 5
    assert playout.heard() == tone(0.8)
    playout.queue("/t/3.r8", tone(0.4), lead_frames=0)
    playout.queue("/t/4.r8", tone(0.4), lead_frames=0)
    clock.now += 0.2
    playout.break_playback(all_queued=True)
    clock.now += 5
    heard = playout.heard()  # 0.8 s, 4.7 s of an idle channel, 0.2 s until the break
    assert len(heard) == 2 * int(RATE * 5.7)
    assert heard.endswith(tone(0.2))
    assert heard[: 2 * int(RATE * 0.8)] == tone(0.8)
