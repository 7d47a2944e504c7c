"""Streaming recognition: what is transcribed while the caller speaks, and when."""

from __future__ import annotations

import asyncio

import pytest

from voicedock.aio import Supervisor
from voicedock.pipeline.dialogue.turn_engine import ConversationConfig, TurnEngine, TurnParts
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.hearing.listener import Listener, UserUtterance
from voicedock.pipeline.hearing.streaming_recognition import StreamingConfig, StreamingRecognizer
from voicedock.pipeline.providers.base import IncrementalStt, ProviderTimeoutError

from .fakes import FakeIncrementalStt, FakeLlm, FakeSink, FakeTts
from .listening import feed, supervised
from .synth import frames, silence, voiced

pytestmark = pytest.mark.unit

EP = EndpointingConfig(silence_timeout_ms=None, max_duration_ms=None, complete_silence_ms=300)
CONFIG = StreamingConfig(interim_every_ms=1000, pause_ms=100)
BYTES_PER_MS = 16  # 8 kHz PCM16


class Call:
    """A listener and a recognizer fed frame by frame, as the conversation does."""

    def __init__(self, stt: FakeIncrementalStt, tasks: Supervisor) -> None:
        self.listener = Listener(8000, endpointing=EP, pre_roll_ms=0)
        self.recognizer = StreamingRecognizer(stt, self.listener, tasks, CONFIG)
        self.turns: list[UserUtterance] = []

    async def feed(self, pcm: bytes) -> None:
        await feed(self.listener, pcm, self.recognizer.listen, self.turns)


async def test_a_turn_is_transcribed_while_spoken_and_its_final_is_the_pause_transcript() -> None:
    stt = FakeIncrementalStt(["I would", "I would like to", "I would like to book.", "wrong"])
    assert isinstance(stt, IncrementalStt)
    tasks = await supervised()
    call = Call(stt, tasks)
    await call.feed(voiced(2500) + silence(700))
    # Interims after 1 s and 2 s of the turn (its start included), then the speculative
    # final once the caller paused for 100 ms; each on the audio heard so far.
    assert [n // BYTES_PER_MS for n, _ in stt.calls] == [1000, 2000, 2600]
    # The second agreed with the first on "I" (the first's last word is never settled).
    assert [prefix for _, prefix in stt.calls] == ["", "", "I"]
    (turn,) = call.turns
    # "I would like to book." reads as finished: the turn ended after 300 ms, not 600.
    assert turn.stopped.decided_at_ms - turn.stopped.ended_at_ms == 300
    assert await call.recognizer.final(turn) == "I would like to book."
    assert len(stt.calls) == 3  # the final was the speculative one: nothing transcribed again
    await tasks.aclose()


async def test_speech_after_the_pause_has_the_tail_transcribed_again() -> None:
    stt = FakeIncrementalStt(["Book me in", "Book me in on", "Book me in on Monday and", "x"])
    tasks = await supervised()
    call = Call(stt, tasks)
    await call.feed(voiced(2100) + silence(200))  # interims at 1 s, 2 s; speculative at the pause
    assert len(stt.calls) == 3
    await call.feed(voiced(400) + silence(700))
    # The pause's transcript trailed off ("and"), but the caller went on: that hint was
    # forgotten, the turn ended after the usual 600 ms, a new speculative covered it.
    (turn,) = call.turns
    assert turn.stopped.decided_at_ms - turn.stopped.ended_at_ms == 600
    assert [n // BYTES_PER_MS for n, _ in stt.calls][3:] == [2800]
    assert await call.recognizer.final(turn) == "x"
    assert len(stt.calls) == 4
    await tasks.aclose()


async def test_one_transcription_at_a_time_and_no_stale_work_queued() -> None:
    stt = FakeIncrementalStt(["Hello there.", "Hello there, I need help."], hold=True)
    tasks = await supervised()
    call = Call(stt, tasks)
    await call.feed(voiced(1100))  # the first interim starts at 1 s and hangs
    await call.feed(voiced(2000) + silence(200))  # more interims due, a pause: none starts
    assert len(stt.calls) == 1
    stt.release()
    await asyncio.sleep(0.01)
    await call.feed(silence(20))  # free again: the speculative final of the pause starts
    assert [n // BYTES_PER_MS for n, _ in stt.calls] == [1000, 3320]
    stt.release()
    await call.feed(silence(600))
    (turn,) = call.turns
    assert await call.recognizer.final(turn) == "Hello there, I need help."
    assert stt.most_running == 1
    await tasks.aclose()


async def test_the_final_waits_for_a_stale_transcription_then_transcribes_the_turn() -> None:
    stt = FakeIncrementalStt(["One two three four", "One two three four five six"], hold=True)
    tasks = await supervised()
    call = Call(stt, tasks)
    await call.feed(voiced(1100))  # an interim hangs
    await call.feed(voiced(400) + silence(700))  # the turn ends meanwhile
    (turn,) = call.turns
    final = asyncio.ensure_future(call.recognizer.final(turn))
    await asyncio.sleep(0.01)
    assert len(stt.calls) == 1  # never two at once
    assert not final.done()
    stt.release()
    await asyncio.sleep(0.01)
    stt.release()
    assert await final == "One two three four five six"
    assert [n // BYTES_PER_MS for n, _ in stt.calls] == [1000, 1650]
    assert stt.most_running == 1
    await tasks.aclose()


async def test_a_failed_speculative_final_is_transcribed_again_at_the_end() -> None:
    stt = FakeIncrementalStt(["Yes."])
    stt.error = ProviderTimeoutError("busy")
    tasks = await supervised()
    call = Call(stt, tasks)
    await call.feed(voiced(600) + silence(200))
    assert len(stt.calls) == 1  # the speculative final failed quietly
    stt.error = None
    await call.feed(silence(500))
    (turn,) = call.turns
    assert turn.stopped.decided_at_ms - turn.stopped.ended_at_ms == 600  # no hint came
    assert await call.recognizer.final(turn) == "Yes."
    assert len(stt.calls) == 2
    await tasks.aclose()


async def converse(stt: FakeIncrementalStt) -> TurnEngine:
    llm = FakeLlm()
    llm.replies = [["Of course."]]
    config = ConversationConfig(endpointing=EP)
    async with TurnEngine(
        TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=FakeSink(instant=True)), config
    ) as conv:
        for frame in frames(voiced(1200) + silence(1200)):
            conv.feed_audio(frame)
            await asyncio.sleep(0)
        async with asyncio.timeout(2):
            while not conv.latencies:
                await asyncio.sleep(0.001)
    return conv


async def test_a_conversation_takes_the_pause_transcript_as_the_final() -> None:
    stt = FakeIncrementalStt(["Hello, I need help."])
    conv = await converse(stt)
    assert conv.transcript[0].content == "Hello, I need help."
    assert [n // BYTES_PER_MS for n, _ in stt.calls] == [1300]  # the pause's, nothing after
    assert conv.latencies[0].endpointing_ms == 300  # a finished sentence


async def test_with_streaming_off_the_ended_turn_is_transcribed_once() -> None:
    stt = FakeIncrementalStt(["Hello, I need help."])
    stt.incremental = False  # stt_config.streaming = false
    conv = await converse(stt)
    assert conv.transcript[0].content == "Hello, I need help."
    assert [n // BYTES_PER_MS for n, _ in stt.calls] == [1350]  # the turn, 150 ms of tail
    assert conv.latencies[0].endpointing_ms == 600  # no hint: the usual wait
