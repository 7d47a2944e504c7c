"""PlayoutTimeline on a virtual clock: what the caller heard of files FreeSWITCH plays in order."""

from __future__ import annotations

import pytest

from voicedock.media.pacer import Utterance
from voicedock.media.playback import Playback
from voicedock.pbx.freeswitch.media.playout import PlayoutTimeline, Segment

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def playback(name: str, frames: int) -> Playback:
    utterance = Utterance(name)
    utterance.frames_sent = frames
    return Playback(name, utterance, 20.0)


async def test_files_play_back_to_back_and_resolve_at_their_end() -> None:
    clock = Clock()
    timeline = PlayoutTimeline(clock)
    first, second = playback("a", 10), playback("b", 20)
    timeline.schedule([Segment(first, 0, 10), Segment(second, 0, 5)])  # one 300 ms file
    timeline.finish(first)
    timeline.schedule([Segment(second, 5, 15)])  # queued behind it
    timeline.finish(second)
    assert timeline.ahead() == pytest.approx(0.6)
    clock.now += 0.1
    timeline.advance()
    assert first.confirmed_frames == 5
    assert not first.done
    clock.now += 0.15
    timeline.advance()
    assert (await first.played()).completed
    assert second.confirmed_frames == 2  # 50 ms into the second playback
    clock.now += 0.4
    timeline.advance()
    result = await second.played()
    assert result.completed
    assert result.played_ms == 400
    assert timeline.ahead() == 0


async def test_a_late_file_starts_when_it_arrives_and_clear_forgets_the_queue() -> None:
    clock = Clock()
    timeline = PlayoutTimeline(clock)
    speech = playback("a", 50)
    timeline.schedule([Segment(speech, 0, 10)])
    clock.now += 1.0  # the channel ran dry: the next file starts when it arrives
    timeline.schedule([Segment(speech, 10, 40)])
    assert timeline.ahead() == pytest.approx(0.8)
    clock.now += 0.3
    timeline.clear()  # barge-in
    assert speech.confirmed_frames == 25
    assert timeline.ahead() == 0
    result = speech.estimate(completed=False, now=clock.now)  # on the same (virtual) clock
    assert result.heard_ms == pytest.approx(500)
    assert not result.completed


async def test_an_utterance_with_nothing_left_to_play_is_complete_at_once() -> None:
    timeline = PlayoutTimeline(Clock())
    empty = playback("e", 0)
    timeline.finish(empty)
    assert (await empty.played()).completed


async def test_a_file_plays_from_when_it_is_queued_on_the_channel_not_from_the_send() -> None:
    clock = Clock()
    timeline = PlayoutTimeline(clock)
    speech = playback("a", 30)
    timeline.sent(0, [Segment(speech, 0, 20)])
    timeline.sent(1, [Segment(speech, 20, 10)])
    timeline.finish(speech)  # its last segment is still on its way
    assert timeline.ahead() == pytest.approx(0.6)  # held by FreeSWITCH, not heard yet
    clock.now += 0.15  # play event, ESL round trip
    timeline.queued(0, latency=0.02)
    timeline.queued(1)  # behind the first: back to back
    clock.now += 0.55
    timeline.advance()
    assert not speech.done  # the send clock would have said "played" 150 ms ago
    assert speech.confirmed_frames == 26
    clock.now += 0.12
    timeline.advance()
    result = await speech.played()
    assert result.completed
    assert result.played_ms == 600


async def test_a_refused_file_ends_its_playback_unplayed_and_clear_drops_what_is_on_its_way() -> (
    None
):
    clock = Clock()
    timeline = PlayoutTimeline(clock)
    refused, dropped = playback("a", 10), playback("b", 10)
    timeline.sent(0, [Segment(refused, 0, 10)])
    timeline.finish(refused)
    timeline.lost(0)
    assert (await refused.played()).completed is False
    timeline.sent(1, [Segment(dropped, 0, 10)])
    timeline.clear()  # barge-in before it was queued
    timeline.queued(1)  # its play event still comes: nothing to schedule
    assert timeline.ahead() == 0
