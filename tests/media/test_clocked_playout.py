"""``ClockedPlayout`` with its pacer driven by hand (one ``advance`` a frame, on a virtual time
line): a playback is confirmed as each of its frames is written and completes with its last;
a barge-in reports what the caller heard of the utterance playing and drops the rest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from voicedock.aio import Coro
from voicedock.domain.audio import ULAW
from voicedock.errors import MediaError
from voicedock.media.clocked_playout import ClockedPlayout
from voicedock.media.pacer import FRAME_PERIOD
from voicedock.media.playback import MAX_MARK, Playback

pytestmark = pytest.mark.unit

FRAME = 160
SILENCE = b"\xff" * FRAME
START = 1000.0


class Leg:
    """The wire side: the frames written, one ``visit`` per 20 ms of a virtual clock."""

    def __init__(self, *, spawn: object = None) -> None:
        self.written: list[bytes] = []
        self.visits = 0
        self.flushes = 0
        self.congested = False
        self.now = START
        self.playout = ClockedPlayout(
            self.written.append,
            spawn if spawn is not None else self._no_spawn,  # type: ignore[arg-type]
            fmt=ULAW,
            frame_bytes=FRAME,
            silence=SILENCE,
            max_queued_frames=8,
            flush_writes=self._flushed,
            congested=lambda: self.congested,
        )

    def _no_spawn(self, coro: Coro[None]) -> None:
        coro.close()
        raise AssertionError("nothing streams in this test")

    def _flushed(self) -> None:
        self.flushes += 1

    def visit(self, n: int = 1) -> None:
        """``n`` of the clock's visits, 20 ms apart."""
        for _ in range(n):
            self.playout.pacer.advance(self.now)
            self.now += FRAME_PERIOD
            self.visits += 1


def finished(playback: Playback) -> bool:
    return playback.done


def speech(tag: int, frames: float) -> bytes:
    return bytes([tag]) * int(FRAME * frames)


async def test_a_playback_is_confirmed_frame_by_frame_and_completes_with_its_last() -> None:
    leg = Leg()
    playback = leg.playout.play(speech(1, 3.5))  # 4 frames, the last padded with silence
    leg.visit()
    assert leg.written == [speech(1, 1)]
    assert playback.confirmed_frames == 1
    leg.visit(2)
    assert playback.confirmed_frames == 3
    assert not finished(playback)  # its last frame is not written yet
    leg.visit()
    assert finished(playback)
    result = await playback.played()
    assert result.completed
    assert result.sent_ms == result.played_ms == result.heard_ms == 80
    assert leg.written[3] == speech(1, 0.5) + b"\xff" * 80
    leg.visit(2)  # nothing queued: silence, one frame a visit
    assert leg.written[4:] == [SILENCE, SILENCE]
    assert leg.flushes == leg.visits  # each visit's writes taken in one go


async def test_playbacks_play_in_order_each_complete_at_its_own_end() -> None:
    leg = Leg()
    first = leg.playout.play(speech(1, 2), mark="first")
    second = leg.playout.play(speech(2, 2), mark="second")
    assert first.id == "first"
    leg.visit(2)
    assert finished(first)
    assert not finished(second)
    assert second.confirmed_frames == 0
    leg.visit(2)
    assert finished(second)
    assert leg.written == [speech(1, 1)] * 2 + [speech(2, 1)] * 2
    assert (await second.played()).sent_ms == 40


async def test_flush_reports_what_was_heard_and_drops_the_rest() -> None:
    leg = Leg()
    playing = leg.playout.play(speech(1, 10))
    waiting = leg.playout.play(speech(2, 5))
    leg.visit(3)
    heard = leg.playout.flush()
    assert heard is not None
    assert not heard.completed
    assert heard.sent_ms == 60
    assert heard.heard_ms == pytest.approx(60)  # frames written x 20 ms
    assert heard.played_ms == 60
    assert await playing.played() == heard
    unheard = await waiting.played()
    assert not unheard.completed
    assert unheard.sent_ms == unheard.heard_ms == 0
    assert leg.playout.pacer.queued_frames == 0
    leg.visit(3)  # the caller stops hearing the assistant at the next frame
    assert leg.written[3:] == [SILENCE] * 3
    assert leg.playout.pacer.stats.frames_cleared == 12


async def test_flush_with_nothing_playing() -> None:
    leg = Leg()
    assert leg.playout.flush() is None
    queued = leg.playout.play(speech(1, 2))  # queued, not a frame written yet
    assert leg.playout.flush() is None
    assert not (await queued.played()).completed
    after = leg.playout.play(speech(3, 1))  # a playback after the flush plays
    leg.visit()
    assert leg.written == [speech(3, 1)]
    assert (await after.played()).completed


async def test_end_resolves_every_playback_and_writes_nothing_more() -> None:
    leg = Leg()
    playing = leg.playout.play(speech(1, 5))
    leg.visit(2)
    leg.playout.end()
    result = await playing.played()
    assert not result.completed
    assert result.sent_ms == 40
    leg.visit(3)
    assert len(leg.written) == 2
    assert leg.playout.pacer.stopped()


async def test_a_congested_leg_keeps_the_frame_for_the_next_visit() -> None:
    leg = Leg()
    playback = leg.playout.play(speech(1, 2))
    leg.congested = True
    leg.visit(3)
    assert leg.written == []
    assert playback.confirmed_frames == 0
    leg.congested = False
    leg.visit(2)
    assert leg.written == [speech(1, 1)] * 2  # nothing dropped
    assert finished(playback)


async def test_marks_are_unique_and_short() -> None:
    leg = Leg()
    auto = [leg.playout.play(speech(1, 1)).id for _ in range(3)]
    assert len(set(auto)) == 3
    leg.playout.play(b"", mark="greeting")
    with pytest.raises(MediaError, match="unique"):
        leg.playout.play(b"", mark="greeting")
    with pytest.raises(MediaError, match=str(MAX_MARK)):
        leg.playout.play(b"", mark="m" * (MAX_MARK + 1))
    leg.playout.play(b"", mark="m" * MAX_MARK)


async def test_an_empty_playback_completes_without_a_frame() -> None:
    leg = Leg()
    playback = leg.playout.play(b"")
    leg.visit()
    assert leg.written == [SILENCE]
    result = await playback.played()
    assert result.completed
    assert result.sent_ms == 0


async def chunks(parts: list[bytes], gate: asyncio.Event) -> AsyncIterator[bytes]:
    for i, part in enumerate(parts):
        if i == 1:
            await gate.wait()  # the rest comes later (a TTS still speaking)
        yield part


async def test_a_streamed_playback_plays_as_it_comes() -> None:
    gate = asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        leg = Leg(spawn=tasks.create_task)
        parts = [speech(1, 1.5), speech(2, 1), speech(3, 0.25)]
        playback = leg.playout.play(chunks(parts, gate))
        await asyncio.sleep(0)
        leg.visit(3)  # one whole frame came; then silence while the rest is awaited
        assert leg.written == [speech(1, 1), SILENCE, SILENCE]
        assert leg.playout.pacer.stats.underruns == 2
        assert not finished(playback)
        gate.set()
        for _ in range(5):
            await asyncio.sleep(0)
        leg.visit(2)
        assert leg.written[3] == speech(1, 0.5) + speech(2, 0.5)
        assert leg.written[4] == speech(2, 0.5) + speech(3, 0.25) + b"\xff" * 40
        assert finished(playback)
        assert (await playback.played()).sent_ms == 60
