"""Semantic end of turn on a call: the turn model asked at each pause of the caller, its
answer ending the turn early (finished) or holding it open (unfinished); the work off the
event loop, in the recognition pool when the node has one."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from voicedock.aio import Supervisor
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.hearing.listener import Listener, UserUtterance
from voicedock.pipeline.hearing.recognition import NodeRecognition
from voicedock.pipeline.hearing.turn_detection import PAUSE_MS, TurnDetector
from voicedock.pipeline.hearing.turn_model import TurnPrediction
from voicedock.pipeline.pools.worker_pool import WorkerPool

from .listening import feed, supervised
from .synth import frames, silence, voiced

pytestmark = pytest.mark.unit

EP = EndpointingConfig(silence_timeout_ms=None, max_duration_ms=None, turn_detection="model")
BYTES_PER_MS = 16  # 8 kHz PCM16


class FakeModel:
    """Answers each question with the next verdict (None: fails); records what it heard."""

    def __init__(self, verdicts: list[bool | None]) -> None:
        self.verdicts = verdicts
        self.heard: list[int] = []  # ms of audio of each question

    async def predict(self, pcm: bytes, sample_rate: int) -> TurnPrediction:
        assert sample_rate == 8000
        self.heard.append(len(pcm) // BYTES_PER_MS)
        verdict = self.verdicts.pop(0)
        if verdict is None:
            raise RuntimeError("the model failed")
        return TurnPrediction(0.9 if verdict else 0.1)


class Call:
    def __init__(self, model: FakeModel, tasks: Supervisor, ep: EndpointingConfig = EP) -> None:
        self.listener = Listener(8000, endpointing=ep, pre_roll_ms=0)
        self.detector = TurnDetector(model.predict, self.listener, tasks)
        self.turns: list[UserUtterance] = []

    async def feed(self, pcm: bytes) -> None:
        await feed(self.listener, pcm, self.detector.listen, self.turns)

    def waited_ms(self) -> list[int]:
        return [t.stopped.decided_at_ms - t.stopped.ended_at_ms for t in self.turns]


async def test_a_turn_heard_finished_ends_after_the_floor() -> None:
    model = FakeModel([True])
    tasks = await supervised()
    call = Call(model, tasks)
    await call.feed(voiced(1500) + silence(700))
    assert call.waited_ms() == [EP.model_floor_ms]  # not the 600 ms of silence
    # Asked once, about the turn's audio up to PAUSE_MS into the pause.
    assert model.heard == [1500 + PAUSE_MS]
    await tasks.aclose()


async def test_a_pause_heard_unfinished_does_not_end_the_turn() -> None:
    # The caller pauses 800 ms mid-sentence, then finishes: one turn, not two.
    model = FakeModel([False, True])
    tasks = await supervised()
    call = Call(model, tasks)
    await call.feed(voiced(1500) + silence(800) + voiced(700) + silence(700))
    assert len(call.turns) == 1
    (turn,) = call.turns
    assert turn.stopped.ended_at_ms - turn.stopped.started_at_ms == 3000
    assert call.waited_ms() == [EP.model_floor_ms]
    assert len(model.heard) == 2  # each pause asked about once
    await tasks.aclose()


async def test_the_same_pause_with_silence_detection_is_cut() -> None:
    silence_ep = EndpointingConfig(silence_timeout_ms=None, max_duration_ms=None)
    model = FakeModel([])
    tasks = await supervised()
    listener = Listener(8000, endpointing=silence_ep, pre_roll_ms=0)
    turns = [
        e
        for f in frames(voiced(1500) + silence(800) + voiced(700) + silence(700))
        for e in listener.process(f)
        if isinstance(e, UserUtterance)
    ]
    assert len(turns) == 2  # the 800 ms pause ended the first after 600 ms
    assert model.heard == []
    await tasks.aclose()


async def test_a_failing_model_leaves_the_pause_to_silence(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = FakeModel([None, None])
    tasks = await supervised()
    call = Call(model, tasks)
    with caplog.at_level(logging.WARNING, "voicedock.pipeline"):
        await call.feed(voiced(1000) + silence(700) + voiced(1000) + silence(700))
    assert call.waited_ms() == [EP.end_silence_ms, EP.end_silence_ms]
    assert len([r for r in caplog.records if "turn model failed" in r.message]) == 1
    await tasks.aclose()


async def test_an_answer_after_the_caller_spoke_again_is_dropped() -> None:
    release = asyncio.Event()
    verdicts = [True, False]

    async def slow(pcm: bytes, sample_rate: int) -> TurnPrediction:
        finished = verdicts.pop(0)
        if finished:
            await release.wait()  # answers only once the caller is talking again
        return TurnPrediction(0.9 if finished else 0.1)

    tasks = await supervised()
    listener = Listener(8000, endpointing=EP, pre_roll_ms=0)
    detector = TurnDetector(slow, listener, tasks)
    turns: list[UserUtterance] = []
    audio = frames(voiced(1000) + silence(200) + voiced(500) + silence(2200))
    for n, frame in enumerate(audio):
        turns += [e for e in listener.process(frame) if isinstance(e, UserUtterance)]
        detector.listen()
        if n == 65:  # during the second stretch of speech
            release.set()
        await asyncio.sleep(0)
    # The late "finished" was about the first pause: the second, heard unfinished, waited
    # the bound.
    assert [t.stopped.decided_at_ms - t.stopped.ended_at_ms for t in turns] == [EP.model_wait_ms]
    await tasks.aclose()


async def test_the_recognition_pool_runs_the_model_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[int] = []

    def predict(pcm: bytes, sample_rate: int) -> TurnPrediction:
        threads.append(threading.get_ident())
        return TurnPrediction(0.9)

    monkeypatch.setattr("voicedock.pipeline.hearing.turn_model.predict_blocking", predict)
    recognition = NodeRecognition(WorkerPool(1, name="recognition"))
    heard = await recognition.predict_turn(voiced(500), 8000)
    assert heard.complete
    assert threads
    assert threads[0] != threading.get_ident()
    await recognition.aclose()
