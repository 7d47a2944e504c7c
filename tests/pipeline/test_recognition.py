"""The node's recognition pool and the admission control reading it
(pipeline/hearing/recognition.py, pipeline/pools/worker_pool.py, calls/speech_admission.py, the
streaming recognizer through the pool)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from voicedock.aio import Supervisor
from voicedock.calls.speech_admission import NodeAtCapacity, SpeechAdmission
from voicedock.config import SpeechSettings
from voicedock.domain.assistant_config import AssistantConfig, config_of
from voicedock.pipeline.hearing.language import CallLanguages, SpokenLanguage, answer_in
from voicedock.pipeline.hearing.listener import Listener, UserUtterance
from voicedock.pipeline.hearing.recognition import NodeRecognition, PooledStt
from voicedock.pipeline.hearing.streaming_recognition import StreamingConfig, StreamingRecognizer
from voicedock.pipeline.hearing.turn_model import installed as turn_model_installed
from voicedock.pipeline.pools.worker_pool import Priority, WorkerPool
from voicedock.pipeline.providers.base import DetectedLanguage, IncrementalStt, LocalStt

from .fakes import FakeIncrementalStt
from .listening import feed, supervised
from .synth import silence, voiced
from .test_streaming_recognition import EP

pytestmark = pytest.mark.unit


class BlockingStt:
    """A ``LocalStt`` whose transcriptions run in the pool's threads: each records (audio
    milliseconds, prefix) when it starts and, while ``gate`` is closed, waits for it."""

    def __init__(self, texts: tuple[str, ...] = ("words",)) -> None:
        self.texts = list(texts)
        self.calls: list[tuple[int, str]] = []
        self.incremental = True
        self.gate = threading.Event()
        self.gate.set()
        self._lock = threading.Lock()
        self.running = 0
        self.most_running = 0

    def transcribe_blocking(self, pcm: bytes, sample_rate: int, prefix: str) -> str:
        with self._lock:
            self.calls.append((len(pcm) * 1000 // (2 * sample_rate), prefix))
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            self.gate.wait(5)
        finally:
            with self._lock:
                self.running -= 1
        with self._lock:
            return self.texts.pop(0) if len(self.texts) > 1 else self.texts[0]

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        return await asyncio.to_thread(self.transcribe_blocking, pcm, sample_rate, "")

    async def transcribe_continuing(self, pcm: bytes, sample_rate: int, prefix: str) -> str:
        return await asyncio.to_thread(self.transcribe_blocking, pcm, sample_rate, prefix)

    async def aclose(self) -> None:
        return None


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.002)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


PCM = b"\x01\x00" * 800  # 100 ms at 8 kHz


# ── the pool ────────────────────────────────────────────────────────────────────────────
def test_only_local_engines_go_through_the_pool() -> None:
    node = NodeRecognition(WorkerPool(1))
    local = BlockingStt()
    assert isinstance(local, LocalStt)
    pooled = node.speech_for(local)
    assert isinstance(pooled, PooledStt)
    assert isinstance(pooled, IncrementalStt)
    cloud = FakeIncrementalStt()  # no blocking call: not the node's to run
    assert node.speech_for(cloud) is cloud


async def test_finals_go_before_interims_of_every_call() -> None:
    node = NodeRecognition(WorkerPool(1))
    stt = BlockingStt()
    stt.gate.clear()
    a, b = node.speech_for(stt), node.speech_for(stt)
    assert isinstance(a, PooledStt)
    assert isinstance(b, PooledStt)
    try:
        busy = a.queue(b"\x01\x00" * 8000, 8000, "")  # 1000 ms: holds the only worker
        await until(lambda: len(stt.calls) == 1)
        interims = [a.queue(PCM * 2, 8000, ""), b.queue(PCM * 3, 8000, "")]
        final_b = asyncio.ensure_future(b.transcribe_continuing(PCM * 4, 8000, "so"))
        final_a = asyncio.ensure_future(a.transcribe(PCM * 5, 8000))
        await until(lambda: node.pool.waiting == 4)
        stt.gate.set()
        await asyncio.gather(busy.future, final_a, final_b, *(j.future for j in interims))
        # The finals in their order, then the interims in theirs.
        assert stt.calls == [(1000, ""), (400, "so"), (500, ""), (200, ""), (300, "")]
        assert node.pool.started == {Priority.DUE: 2, Priority.AHEAD: 3, Priority.SPARE: 0}
    finally:
        stt.gate.set()
        await node.aclose()


async def test_the_pool_never_runs_more_transcriptions_than_its_workers() -> None:
    node = NodeRecognition(WorkerPool(2))
    stt = BlockingStt()
    pooled = node.speech_for(stt)
    assert isinstance(pooled, PooledStt)
    try:
        stt.gate.clear()
        work = [asyncio.ensure_future(pooled.transcribe(PCM, 8000)) for _ in range(5)]
        work += [asyncio.ensure_future(asyncio.shield(pooled.queue(PCM, 8000, "").future))]
        await until(lambda: stt.running == 2)
        assert node.pool.waiting == 4
        stt.gate.set()
        assert await asyncio.gather(*work) == ["words"] * 6
        assert stt.most_running == 2
    finally:
        stt.gate.set()
        await node.aclose()


async def test_aclose_drops_what_waits_lets_what_runs_finish_and_is_idempotent() -> None:
    node = NodeRecognition(WorkerPool(1))
    stt = BlockingStt()
    pooled = node.speech_for(stt)
    assert isinstance(pooled, PooledStt)
    stt.gate.clear()
    running = asyncio.ensure_future(pooled.transcribe(PCM, 8000))
    await until(lambda: stt.running == 1)
    waiting = pooled.queue(PCM * 2, 8000, "")
    closing = asyncio.ensure_future(node.aclose())
    await asyncio.sleep(0.01)
    assert waiting.future.cancelled()  # never runs
    assert not closing.done()  # waits for the transcription under way
    stt.gate.set()
    await closing
    assert await running == "words"
    assert len(stt.calls) == 1
    await node.aclose()  # again: nothing happens
    with pytest.raises(RuntimeError, match="closed"):
        pooled.queue(PCM, 8000, "")


async def test_the_wait_is_the_oldest_waiting_job_or_the_longest_recent_wait() -> None:
    clock = Clock()
    pool = WorkerPool(1, window_s=2.0, clock=clock)
    gate = threading.Event()
    try:
        pool.submit(lambda: gate.wait(5), Priority.AHEAD)  # holds the worker
        assert pool.wait_s() == 0.0
        ahead = pool.submit(lambda: None, Priority.AHEAD)
        clock.now += 1.0
        assert pool.wait_s() == pytest.approx(1.0)  # work ahead that waits is late too
        final = pool.submit(lambda: None, Priority.DUE)
        clock.now += 0.3
        assert pool.wait_s() == pytest.approx(1.3)
        gate.set()
        await asyncio.gather(final.future, ahead.future)
        # Started: their waits count for the window, then no more.
        assert pool.wait_s() == pytest.approx(1.3)
        clock.now += 1.9
        assert pool.wait_s() == pytest.approx(1.3)
        clock.now += 0.2
        assert pool.wait_s() == 0.0
    finally:
        gate.set()
        await pool.aclose()


# ── admission control ───────────────────────────────────────────────────────────────────
OFFLINE = config_of({"stt_config": {"provider": "offline"}})
DEEPGRAM = config_of(
    {
        "stt_config": {"provider": "deepgram", "api_key": "dg-key-123456"},
        "turn_detection": "silence",
    }
)
# A cloud STT whose turns the node's turn model decides: its predictions are pool work.
DEEPGRAM_TURN_MODEL = config_of(
    {"stt_config": {"provider": "deepgram", "api_key": "dg-key-123456"}, "turn_detection": "model"}
)
REALTIME = config_of({"provider": "xai_realtime", "llm_config": {"voice": "Ara"}})
DEFAULT = AssistantConfig()


async def test_admission_refuses_offline_speech_calls_while_finals_wait_past_the_bound() -> None:
    clock = Clock()
    pool = WorkerPool(1, window_s=2.0, clock=clock)
    node = NodeRecognition(pool, admission_wait_s=0.25)
    admission = SpeechAdmission(node, SpeechSettings(admission_wait_ms=250))
    gate = threading.Event()
    try:
        pool.submit(lambda: gate.wait(5), Priority.DUE)
        assert admission.refusal(OFFLINE, "outbound") is None
        pool.submit(lambda: None, Priority.DUE)
        clock.now += 0.2
        assert node.admits()  # under the bound: admitted
        assert admission.refusal(DEFAULT, "inbound") is None
        clock.now += 0.1
        assert not node.admits()
        # The operator's default STT (offline) and an explicit one are refused ...
        assert admission.refusal(DEFAULT, "inbound") == 3  # the window plus the wait, rounded up
        assert admission.refusal(OFFLINE, "campaign") == 3
        with pytest.raises(NodeAtCapacity) as refused:
            admission.check(OFFLINE, "outbound")
        assert refused.value.status == 503
        assert refused.value.headers() == {"Retry-After": "3"}
        assert set(refused.value.body()) == {"error", "message"}
        # ... a cloud STT whose turns silence decides, or a speech-to-speech model, puts
        # nothing on the recognizer; a cloud STT with the turn model does.
        assert admission.refusal(DEEPGRAM, "outbound") is None
        assert admission.refusal(REALTIME, "inbound") is None
        refused_model = admission.refusal(DEEPGRAM_TURN_MODEL, "outbound")
        assert (refused_model is not None) == turn_model_installed()
        outbound = 2 if turn_model_installed() else 1
        assert admission.refused == {"inbound": 1, "campaign": 1, "outbound": outbound}
        gate.set()
        await until(lambda: pool.running == 0)
        clock.now += 2.1  # the long waits left the window
        assert admission.refusal(OFFLINE, "outbound") is None
    finally:
        gate.set()
        await pool.aclose()


async def test_a_bound_of_zero_never_refuses() -> None:
    clock = Clock()
    pool = WorkerPool(1, clock=clock)
    node = NodeRecognition(pool, admission_wait_s=0.0)
    gate = threading.Event()
    try:
        pool.submit(lambda: gate.wait(5))
        pool.submit(lambda: None)
        clock.now += 60
        assert node.wait_s() == pytest.approx(60)
        assert node.admits()
    finally:
        gate.set()
        await pool.aclose()


# ── the streaming recognizer through the pool ───────────────────────────────────────────
class Call:
    def __init__(self, stt: PooledStt, tasks: Supervisor) -> None:
        self.listener = Listener(8000, endpointing=EP, pre_roll_ms=0)
        config = StreamingConfig(interim_every_ms=1000, pause_ms=100)
        self.recognizer = StreamingRecognizer(stt, self.listener, tasks, config)
        self.turns: list[UserUtterance] = []

    async def feed(self, pcm: bytes) -> None:
        await feed(self.listener, pcm, self.recognizer.listen, self.turns)


async def test_an_interim_still_waiting_when_the_turn_ends_is_dropped_for_the_final() -> None:
    node = NodeRecognition(WorkerPool(1))
    stt = BlockingStt(("One two three four five six",))
    pooled = node.speech_for(stt)
    assert isinstance(pooled, PooledStt)
    tasks = await supervised()
    try:
        stt.gate.clear()
        other = pooled.queue(PCM, 8000, "")  # another call's work holds the only worker
        await until(lambda: stt.running == 1)
        call = Call(pooled, tasks)
        await call.feed(voiced(1100))  # its interim is queued behind it
        await call.feed(voiced(400) + silence(700))  # the turn ends meanwhile
        (turn,) = call.turns
        final = asyncio.ensure_future(call.recognizer.final(turn))
        await until(lambda: node.pool.waiting == 1)  # the final, in the interim's place
        stt.gate.set()
        assert await final == "One two three four five six"
        await other.future
        # The other call's work, then the whole turn: the interim never ran.
        assert [ms for ms, _ in stt.calls] == [100, 1650]
    finally:
        stt.gate.set()
        await tasks.aclose()
        await node.aclose()


async def test_the_speculative_final_is_promoted_when_the_caller_waits_for_it() -> None:
    node = NodeRecognition(WorkerPool(1))
    stt = BlockingStt(("Book me in for Monday.",))
    pooled = node.speech_for(stt)
    assert isinstance(pooled, PooledStt)
    tasks = await supervised()
    try:
        call = Call(pooled, tasks)
        await call.feed(voiced(800))
        stt.gate.clear()
        holder = pooled.queue(PCM, 8000, "")  # the worker is taken
        await until(lambda: stt.running == 1)
        earlier = [pooled.queue(PCM * 3, 8000, "") for _ in range(2)]  # other calls' interims
        await call.feed(silence(150))  # the pause: its speculative final is queued AHEAD
        assert node.pool.waiting == 3
        await call.feed(silence(500))
        (turn,) = call.turns
        final = asyncio.ensure_future(call.recognizer.final(turn))
        await asyncio.sleep(0.01)
        stt.gate.set()
        assert await final == "Book me in for Monday."
        await asyncio.gather(holder.future, *(j.future for j in earlier))
        # The speculative final ran right after the holder, before the interims queued
        # before it; it was the final (the turn not transcribed again).
        ran = [ms for ms, _ in stt.calls]
        assert ran[0] == 100
        assert ran[1] >= 800  # the turn up to its pause
        assert ran[2:] == [300, 300]
        assert node.pool.started == {Priority.DUE: 1, Priority.AHEAD: 3, Priority.SPARE: 0}
    finally:
        stt.gate.set()
        await tasks.aclose()
        await node.aclose()


async def test_a_call_ending_while_its_interim_waits_leaves_nothing_waiting() -> None:
    """The caller hangs up while an interim of theirs waits for a worker: the call's tasks are
    cancelled, and with them the job. Once the worker is free nothing waits any more and the
    wait leaves the window: the node admits calls again (a job left behind would age for ever
    and refuse every offline-speech call until a restart)."""
    clock = Clock()
    node = NodeRecognition(WorkerPool(1, clock=clock), admission_wait_s=0.25)
    stt = BlockingStt(("words",))
    pooled = node.speech_for(stt)
    assert isinstance(pooled, PooledStt)
    tasks = await supervised()
    try:
        stt.gate.clear()
        other = pooled.queue(PCM, 8000, "")  # another call's work holds the only worker
        await until(lambda: stt.running == 1)
        call = Call(pooled, tasks)
        await call.feed(voiced(1100))  # its interim is queued behind it
        assert node.pool.waiting == 1
        await tasks.aclose()  # the caller hangs up: the conversation's tasks end
        await asyncio.sleep(0)
        assert node.pool.waiting == 0  # the interim's job went with its call
        stt.gate.set()
        await other.future
        clock.now += node.pool.window_s + 1  # the holder's wait left the window
        assert node.wait_s() == 0
        assert node.admits()
        assert [ms for ms, _ in stt.calls] == [100]  # the interim never ran
    finally:
        stt.gate.set()
        await tasks.aclose()
        await node.aclose()


async def test_a_job_whose_waiter_is_cancelled_no_longer_waits() -> None:
    """Whoever awaits a job's future directly and is cancelled cancels the job: it leaves the
    waiting jobs at once (the count and the wait), not only when a worker would pick it up."""
    clock = Clock()
    pool = WorkerPool(1, clock=clock)
    gate = threading.Event()
    try:
        pool.submit(lambda: gate.wait(5))
        job = pool.submit(lambda: "x", Priority.AHEAD)

        async def wait() -> str:
            return await job.future

        waiter = asyncio.ensure_future(wait())
        await asyncio.sleep(0)
        clock.now += 10
        assert pool.waiting == 1
        assert pool.wait_s() == pytest.approx(10)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert job.future.cancelled()
        assert pool.waiting == 0
        assert pool.wait_s() == 0
    finally:
        gate.set()
        await pool.aclose()


class BlockingDetector(BlockingStt):
    """A ``BlockingStt`` that also tells the language of what it hears (German, surely)."""

    def detect_language_blocking(
        self, pcm: bytes, sample_rate: int, among: frozenset[str]
    ) -> DetectedLanguage | None:
        self.transcribe_blocking(pcm, sample_rate, "detect")
        return DetectedLanguage("de", 0.99) if "de" in among else None


async def test_a_callers_language_is_detected_in_the_pool_as_a_turn_the_reply_waits_for() -> None:
    """The detection of a caller turn's language runs where the call's transcriptions run:
    behind the one worker's transcription, before the interims queued ahead, DUE."""
    node = NodeRecognition(WorkerPool(1))
    stt = BlockingDetector()
    pooled = node.speech_for(stt)
    assert isinstance(pooled, PooledStt)
    languages = CallLanguages("en", [SpokenLanguage("de", answer_in("de"))], stt)
    languages.detected_by(node.detect_language)
    try:
        stt.gate.clear()
        busy = pooled.queue(PCM * 10, 8000, "")  # holds the only worker
        await until(lambda: stt.running == 1)
        interim = pooled.queue(PCM * 2, 8000, "")
        heard = asyncio.ensure_future(languages.heard(PCM * 3, 8000, words=5))
        await until(lambda: node.pool.waiting == 2)
        assert stt.running == 1  # no thread of its own beside the pool's worker
        stt.gate.set()
        assert await heard == "de"
        await asyncio.gather(busy.future, interim.future)
        assert stt.calls == [(1000, ""), (300, "detect"), (200, "")]
        assert stt.most_running == 1
        assert node.pool.started == {Priority.DUE: 1, Priority.AHEAD: 2, Priority.SPARE: 0}
    finally:
        stt.gate.set()
        await node.aclose()
