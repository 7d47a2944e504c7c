"""A caller already talking when the greeting is ready: the greeting waits for the caller's
turn to end, as a queued `say` does (``pipeline/dialogue/barge_in.py``), in both barge-in
modes (through the turn engine with the fake media)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from voicedock.pipeline.dialogue.turn_engine import TurnEngine, TurnParts
from voicedock.pipeline.dialogue.words_decide import BargeInConfig

from .fakes import FakeHandle, FakeLlm, FakeSink, FakeStt, FakeTts
from .synth import frames, silence, voiced
from .test_turn_engine import config, until

pytestmark = pytest.mark.unit

GREETING = "Hello, this is the assistant."


class SlowTts(FakeTts):
    """The greeting's voice answers only once ``ready`` is set."""

    def __init__(self) -> None:
        super().__init__(ms_per_char=20)
        self.ready = asyncio.Event()

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        await self.ready.wait()
        async for pcm in super().synthesize(text):
            yield pcm


@pytest.mark.parametrize("on_words", [False, True])
async def test_a_greeting_ready_while_the_caller_talks_waits_for_the_callers_turn(
    on_words: bool,
) -> None:
    stt, tts, sink = FakeStt(["Hi, I am calling about my order."]), SlowTts(), FakeSink()
    llm = FakeLlm(["Sure."])
    parts = TurnParts(stt=stt, llm=llm, tts=tts, sink=sink)
    cfg = config(first_message=GREETING, barge_in=BargeInConfig(on_words=on_words))
    conv = TurnEngine(parts, cfg)
    async with conv:
        for frame in frames(voiced(400)):  # the caller starts talking ...
            conv.feed_audio(frame)
        await until(lambda: not conv._floor.floor_free.is_set())
        tts.ready.set()  # ... and the greeting's audio is ready
        for frame in frames(voiced(2000)):  # the caller goes on talking
            conv.feed_audio(frame)
            await asyncio.sleep(0)
        assert not sink.handles  # nothing played over the caller
        await _greeted_after_the_caller(conv, sink)


class SlowSink(FakeSink):
    """Queuing audio takes until ``through`` is set (a media connection still busy)."""

    def __init__(self) -> None:
        super().__init__()
        self.through = asyncio.Event()
        self.asked = 0

    async def play(self, pcm: bytes, sample_rate: int) -> FakeHandle:
        self.asked += 1
        await self.through.wait()
        return await super().play(pcm, sample_rate)


@pytest.mark.parametrize("on_words", [False, True])
async def test_a_caller_who_takes_the_floor_as_the_greeting_is_queued_is_not_talked_over(
    on_words: bool,
) -> None:
    """The caller's speech starts while the greeting's first audio is on its way to the
    line: that audio is taken back, and the greeting waits for the caller's turn to end."""
    stt, tts, sink = FakeStt(["Hi, I am calling about my order."]), FakeTts(), SlowSink()
    parts = TurnParts(stt=stt, llm=FakeLlm(["Sure."]), tts=tts, sink=sink)
    cfg = config(first_message=GREETING, barge_in=BargeInConfig(on_words=on_words))
    conv = TurnEngine(parts, cfg)
    async with conv:
        await until(lambda: sink.asked == 1)  # the greeting's audio is being queued ...
        for frame in frames(voiced(400)):  # ... as the caller starts talking
            conv.feed_audio(frame)
        await until(lambda: not conv._floor.floor_free.is_set())
        sink.through.set()
        for frame in frames(voiced(2000)):  # the caller goes on talking
            conv.feed_audio(frame)
            await asyncio.sleep(0)
        assert [h.flushed for h in sink.handles] == [True]  # not heard over the caller
        assert not conv.transcript
        await _greeted_after_the_caller(conv, sink)


async def _greeted_after_the_caller(conv: TurnEngine, sink: FakeSink) -> None:
    """The caller's turn ends: the greeting is said whole after their words, once, uncut."""
    for frame in frames(silence(400)):
        conv.feed_audio(frame)

    def over() -> bool:
        sink.play_all()
        return len(conv.transcript) >= 3 and not conv._assistant_audio.speeches

    await until(over)
    assert [(e.role, e.content, e.interrupted) for e in conv.transcript][:2] == [
        ("user", "Hi, I am calling about my order.", False),
        ("assistant", GREETING, False),
    ]
