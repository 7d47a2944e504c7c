"""The node's synthesis cache, pool and synthesis ahead of time (pipeline/speaking/synthesis.py,
pipeline/pools/synthesis_cache.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import pytest

from pipeline.fakes import FakeTts
from pipeline.sentence_tts import GatedTts
from voicedock.pipeline.pools.synthesis_cache import SynthesisCache, SynthesisKey
from voicedock.pipeline.pools.worker_pool import PoolFull, Priority, WorkerPool
from voicedock.pipeline.providers.base import SentenceTts
from voicedock.pipeline.speaking.synthesis import CachedTts, NodeSynthesis

pytestmark = pytest.mark.unit


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.002)


# ── the cache ───────────────────────────────────────────────────────────────────────────
def key(text: str, scope: str = "org-a", voice: str = "piper|joe|8000") -> SynthesisKey:
    return SynthesisKey(scope, voice, text)


def test_cache_is_bounded_by_bytes_and_evicts_the_least_recently_used() -> None:
    cache = SynthesisCache(max_bytes=300)
    cache.put(key("one"), b"1" * 100)
    cache.put(key("two"), b"2" * 100)
    cache.put(key("three"), b"3" * 100)
    assert cache.get(key("one")) == b"1" * 100  # used again: now the most recent
    cache.put(key("four"), b"4" * 100)
    assert key("two") not in cache  # the least recently used went
    assert [k in cache for k in (key("one"), key("three"), key("four"))] == [True] * 3
    assert cache.size == 300 <= cache.max_bytes
    cache.put(key("big"), b"b" * 250)  # needs the room of three entries
    assert cache.size <= 300
    assert len(cache) == 1
    assert key("big") in cache


def test_cache_keeps_nothing_larger_than_its_bound() -> None:
    cache = SynthesisCache(max_bytes=100)
    cache.put(key("small"), b"s" * 60)
    cache.put(key("huge"), b"h" * 101)
    assert key("huge") not in cache
    assert key("small") in cache
    cache.put(key("small"), b"t" * 101)  # replaced by audio too large: gone, size right
    assert len(cache) == 0
    assert cache.size == 0


def test_cache_keys_by_organization_voice_and_text() -> None:
    cache = SynthesisCache(max_bytes=10_000)
    cache.put(key("Hello."), b"a" * 10)
    assert cache.get(key("Hello.")) == b"a" * 10
    assert cache.get(key("Hello.", scope="org-b")) is None  # never across organizations
    assert cache.get(key("Hello.", voice="piper|joe|16000")) is None  # another rate
    assert cache.get(key("Hello.", voice="espeak-ng|en-us|165|8000")) is None
    assert cache.get(key("Hello!")) is None
    assert (cache.hits, cache.misses) == (1, 4)


# ── the pool ────────────────────────────────────────────────────────────────────────────
async def test_pool_runs_due_audio_before_audio_not_due_yet() -> None:
    pool = WorkerPool(workers=1)
    order: list[str] = []
    blocker = threading.Event()
    try:
        first = pool.submit(lambda: blocker.wait(5), Priority.DUE)
        await until(lambda: pool.running == 1)

        def job(name: str) -> Callable[[], None]:
            return lambda: order.append(name)

        ahead_1 = pool.submit(job("ahead-1"), Priority.AHEAD)
        ahead_2 = pool.submit(job("ahead-2"), Priority.AHEAD)
        due_1 = pool.submit(job("due-1"), Priority.DUE)
        ahead_3 = pool.submit(job("ahead-3"), Priority.AHEAD)
        due_2 = pool.submit(job("due-2"), Priority.DUE)
        ahead_3.promote()  # a caller waits for it now
        assert pool.waiting == 5
        blocker.set()
        await asyncio.gather(*(j.future for j in (first, ahead_1, ahead_2, due_1, ahead_3, due_2)))
        assert order == ["due-1", "due-2", "ahead-3", "ahead-1", "ahead-2"]
    finally:
        blocker.set()
        await pool.aclose()


async def test_pool_never_runs_more_than_its_workers() -> None:
    pool = WorkerPool(workers=2)
    lock = threading.Lock()
    now = [0]
    peak = [0]

    def work() -> None:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.02)
        with lock:
            now[0] -= 1

    try:
        await asyncio.gather(*(pool.run(work) for _ in range(8)))
        assert peak[0] == 2
        assert pool.running == 0
        assert pool.waiting == 0
    finally:
        await pool.aclose()


async def test_pool_sized_to_the_cores_by_default() -> None:
    import os

    pool = WorkerPool()
    assert pool.workers == max(1, os.cpu_count() or 1)
    await pool.aclose()


async def test_a_job_cancelled_before_it_started_never_runs() -> None:
    pool = WorkerPool(workers=1)
    blocker = threading.Event()
    ran: list[str] = []
    try:
        pool.submit(lambda: blocker.wait(5))
        waiting = asyncio.ensure_future(pool.run(lambda: ran.append("late"), Priority.AHEAD))
        await until(lambda: pool.waiting == 1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        blocker.set()
        await pool.run(lambda: ran.append("next"))
        assert ran == ["next"]
    finally:
        blocker.set()
        await pool.aclose()


async def test_a_full_pool_refuses_audio_not_due_yet_never_audio_a_caller_waits_for() -> None:
    pool = WorkerPool(workers=1, max_waiting=2)
    blocker = threading.Event()
    ran: list[str] = []

    def job(name: str) -> Callable[[], None]:
        return lambda: ran.append(name)

    try:
        pool.submit(lambda: blocker.wait(5), Priority.DUE)
        await until(lambda: pool.running == 1)
        pool.submit(job("ahead-1"), Priority.AHEAD)
        pool.submit(job("ahead-2"), Priority.AHEAD)
        assert pool.waiting == 2
        with pytest.raises(PoolFull):
            pool.submit(job("ahead-3"), Priority.AHEAD)  # would not fit: refused, never queued
        due = [pool.submit(job(f"due-{i}"), Priority.DUE) for i in range(3)]  # always taken
        assert pool.waiting == 5
        blocker.set()
        await asyncio.gather(*(j.future for j in due))
        await until(lambda: pool.waiting == 0 and pool.running == 0)
        assert ran == ["due-0", "due-1", "due-2", "ahead-1", "ahead-2"]
        pool.submit(job("ahead-4"), Priority.AHEAD)  # room again
        await until(lambda: "ahead-4" in ran)
    finally:
        blocker.set()
        await pool.aclose()


async def test_a_greeting_that_does_not_fit_the_pool_is_synthesized_when_due() -> None:
    node = NodeSynthesis(WorkerPool(workers=1, max_waiting=1), SynthesisCache(1024 * 1024))
    tts = GatedTts()
    gate = tts.gate("Busy.")
    try:
        busy = node.prepare(tts, "org-a", "Busy.")
        await until(lambda: node.pool.running == 1)
        queued = node.prepare(tts, "org-a", "Queued.")
        assert node.pool.waiting == 1
        held = node.prepare(tts, "org-a", "Hello there. How are you?")  # no room: skipped
        assert node.skipped_ahead == 1  # the text, from its first sentence on
        assert node.pool.waiting == 1
        gate.set()
        # answered: the greeting is synthesized then, as without synthesis ahead
        audio = await spoken(node.speech_for(tts, "org-a"), "Hello there. How are you?")
        assert len(audio) == 2
        assert all(audio)
        for presynthesis in (busy, queued, held):
            presynthesis.release()
    finally:
        gate.set()
        await node.pool.aclose()


# ── synthesis ahead of time, through the cache ──────────────────────────────────────────
@pytest.fixture
async def node() -> NodeSynthesis:
    synthesis = NodeSynthesis(WorkerPool(workers=2), SynthesisCache(1024 * 1024))
    yield synthesis  # type: ignore[misc]
    await synthesis.pool.aclose()


async def spoken(tts: CachedTts | FakeTts, text: str) -> list[bytes]:
    return [pcm async for pcm in tts.synthesize(text)]


def test_offline_engines_are_sentence_tts() -> None:
    from voicedock.pipeline.providers.espeak_tts import EspeakTts
    from voicedock.pipeline.providers.piper_tts import PiperTts

    assert isinstance(GatedTts(), SentenceTts)
    assert not isinstance(FakeTts(), SentenceTts)
    piper = PiperTts(model_path="/voices/a.onnx", sample_rate=8000)
    assert isinstance(piper, SentenceTts)
    assert (
        piper.voice_identity
        != PiperTts(model_path="/voices/a.onnx", sample_rate=16000).voice_identity
    )
    assert piper.voice_identity != PiperTts(model_path="/voices/b.onnx").voice_identity
    assert hasattr(EspeakTts, "synthesize_sentence")


async def test_greeting_ready_before_the_answer_is_not_synthesized_again(
    node: NodeSynthesis,
) -> None:
    tts = GatedTts()
    text = "Hello, this is Joe. How can I help?"
    held = node.prepare(tts, "org-a", text)
    await until(lambda: node.ready(tts, "org-a", text))
    assert tts.synthesized == ["Hello, this is Joe.", "How can I help?"]
    # the call answers: its own TTS (another instance, same voice) speaks from the cache
    call_tts = node.speech_for(GatedTts(), "org-a")
    assert isinstance(call_tts, CachedTts)
    audio = await spoken(call_tts, text)
    assert len(audio) == 2
    assert all(audio)
    held.release()
    # twenty calls of the same campaign: the greeting was synthesized once
    for _ in range(20):
        await spoken(node.speech_for(GatedTts(), "org-a"), text)
    assert tts.synthesized == ["Hello, this is Joe.", "How can I help?"]
    assert node.synthesized == 2


async def test_another_organization_never_hears_a_cached_greeting(node: NodeSynthesis) -> None:
    first, second = GatedTts(), GatedTts()
    await spoken(node.speech_for(first, "org-a"), "Your code is 4 4 1 9.")
    await spoken(node.speech_for(second, "org-b"), "Your code is 4 4 1 9.")
    assert second.synthesized == ["Your code is 4 4 1 9."]  # synthesized for org-b itself


async def test_a_call_answered_early_starts_with_what_is_ready(node: NodeSynthesis) -> None:
    tts = GatedTts()
    second = tts.gate("The second sentence takes long.")
    text = "Hi there. The second sentence takes long."
    held = node.prepare(tts, "org-a", text)
    await until(lambda: SynthesisKey("org-a", tts.voice_identity, "Hi there.") in node.cache)
    call_tts = node.speech_for(tts, "org-a")
    stream = call_tts.synthesize(text)
    first = await asyncio.wait_for(anext(stream), 1)  # at once, the rest still synthesizing
    assert first
    assert not second.is_set()
    rest = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    assert not rest.done()  # streamed as it comes
    second.set()
    assert await asyncio.wait_for(rest, 5)
    held.release()
    assert tts.synthesized == ["Hi there.", "The second sentence takes long."]  # once each


async def test_a_waiting_caller_goes_before_synthesis_ahead_of_time(node: NodeSynthesis) -> None:
    tts = GatedTts()
    busy = [tts.gate("Busy one."), tts.gate("Busy two.")]
    for text in ("Busy one.", "Busy two."):  # both workers taken by syntheses ahead
        node.prepare(tts, "org-b", text)
    await until(lambda: node.pool.running == 2)
    node.prepare(tts, "org-a", "Ahead of time.")
    answered = asyncio.ensure_future(spoken(node.speech_for(tts, "org-a"), "Hello caller."))
    await until(lambda: node.pool.waiting == 2)
    busy[0].set()  # one worker free: the caller's sentence, not the one ahead of time
    await asyncio.wait_for(answered, 5)
    busy[1].set()
    await until(lambda: "Ahead of time." in tts.synthesized)
    # the caller's greeting went before the synthesis that was only ahead of time
    assert tts.synthesized.index("Hello caller.") < tts.synthesized.index("Ahead of time.")


async def test_a_call_ending_unanswered_drops_its_presynthesis(node: NodeSynthesis) -> None:
    tts = GatedTts()
    gates = [tts.gate("Other call one."), tts.gate("Other call two.")]
    node.prepare(tts, "org-b", "Other call one.")
    node.prepare(tts, "org-b", "Other call two.")
    await until(lambda: node.pool.running == 2)
    held = node.prepare(tts, "org-a", "Nobody will hear this.")
    assert node.pool.waiting == 1
    held.release()  # the call ended unanswered
    held.release()  # idempotent
    assert node.pool.waiting == 0
    for gate in gates:
        gate.set()
    await until(lambda: node.pool.running == 0)
    await asyncio.sleep(0.05)
    assert "Nobody will hear this." not in tts.synthesized
    assert not node._pending  # nothing left behind


async def test_released_presynthesis_still_serves_a_caller_waiting_for_it(
    node: NodeSynthesis,
) -> None:
    tts = GatedTts()
    gate = tts.gate("Shared greeting.")
    held = node.prepare(tts, "org-a", "Shared greeting.")
    listening = asyncio.ensure_future(spoken(node.speech_for(tts, "org-a"), "Shared greeting."))
    await asyncio.sleep(0.02)
    held.release()  # another call's end: this caller still waits for the same audio
    gate.set()
    assert await asyncio.wait_for(listening, 5)
    assert tts.synthesized == ["Shared greeting."]


async def test_cloud_tts_is_neither_cached_nor_prepared(node: NodeSynthesis) -> None:
    cloud = FakeTts()
    assert node.speech_for(cloud, "org-a") is cloud
    held = node.prepare(cloud, "org-a", "Hello.")
    assert held.entries == []
    assert node.pool.waiting == 0
    assert not node.ready(cloud, "org-a", "Hello.")


async def test_a_failed_synthesis_reaches_the_caller_and_is_not_cached(
    node: NodeSynthesis,
) -> None:
    tts = GatedTts()

    def broken(sentence: str) -> bytes:
        from voicedock.pipeline.providers.base import ProviderResponseError

        raise ProviderResponseError("engine broke")

    tts.synthesize_sentence = broken  # type: ignore[method-assign]
    from voicedock.errors import ProviderError

    with pytest.raises(ProviderError):
        await spoken(node.speech_for(tts, "org-a"), "Hello.")
    assert len(node.cache) == 0
    assert not node._pending


# ── voice previews: spare capacity only, their own cache ────────────────────────────────
async def test_spare_work_goes_after_every_due_and_ahead_job() -> None:
    pool = WorkerPool(workers=1)
    order: list[str] = []
    blocker = threading.Event()

    def job(name: str) -> Callable[[], None]:
        return lambda: order.append(name)

    try:
        pool.submit(lambda: blocker.wait(5))
        await until(lambda: pool.running == 1)
        jobs = [
            pool.submit(job("spare-1"), Priority.SPARE),
            pool.submit(job("ahead-1"), Priority.AHEAD),
            pool.submit(job("spare-2"), Priority.SPARE),
            pool.submit(job("due-1"), Priority.DUE),
            pool.submit(job("spare-3"), Priority.SPARE),
        ]
        jobs[4].promote()  # a caller waits for it now: it is the caller's
        assert (pool.waiting, pool.spare_waiting) == (5, 2)
        blocker.set()
        await asyncio.gather(*(j.future for j in jobs))
        assert order == ["due-1", "spare-3", "ahead-1", "spare-1", "spare-2"]
        assert pool.started[Priority.SPARE] == 2
    finally:
        blocker.set()
        await pool.aclose()


async def test_spare_work_runs_one_job_at_a_time_and_only_on_an_idle_pool() -> None:
    pool = WorkerPool(workers=3)
    call, spare = threading.Event(), threading.Event()
    try:
        calls = pool.submit(lambda: call.wait(5))
        await until(lambda: pool.running == 1)
        previews = [pool.submit(lambda: spare.wait(5), Priority.SPARE) for _ in range(3)]
        assert (pool.running, pool.spare_waiting) == (1, 3)  # two workers free, yet it waits
        call.set()
        await calls.future
        await until(lambda: pool.running_spare == 1)
        assert (pool.running, pool.spare_waiting) == (1, 2)  # one at a time
        assert await pool.run(lambda: "due") == "due"  # a free worker for a caller at once
        spare.set()
        await asyncio.gather(*(j.future for j in previews))
        assert (pool.running, pool.running_spare) == (0, 0)
    finally:
        call.set()
        spare.set()
        await pool.aclose()


async def test_a_pool_of_one_worker_runs_spare_work_when_it_is_free() -> None:
    pool = WorkerPool(workers=1)
    try:
        assert await pool.run(lambda: "spare", Priority.SPARE) == "spare"
    finally:
        await pool.aclose()


async def test_spare_work_has_its_own_bound() -> None:
    pool = WorkerPool(workers=1, max_waiting=1, max_spare=2)
    blocker = threading.Event()
    try:
        pool.submit(lambda: blocker.wait(5))
        await until(lambda: pool.running == 1)
        pool.submit(lambda: None, Priority.SPARE)
        pool.submit(lambda: None, Priority.SPARE)
        with pytest.raises(PoolFull):
            pool.submit(lambda: None, Priority.SPARE)
        pool.submit(lambda: None, Priority.AHEAD)  # spare work takes no room of work ahead
        with pytest.raises(PoolFull):
            pool.submit(lambda: None, Priority.AHEAD)
    finally:
        blocker.set()
        await pool.aclose()


async def test_spare_work_waiting_is_not_the_pool_running_late() -> None:
    now = [0.0]
    pool = WorkerPool(workers=1, clock=lambda: now[0])
    blocker = threading.Event()
    try:
        pool.submit(lambda: blocker.wait(5))
        await until(lambda: pool.running == 1)
        pool.submit(lambda: None, Priority.SPARE)
        now[0] = 10.0
        assert pool.wait_s() == 0.0  # a preview waits for spare capacity by design
        pool.submit(lambda: None, Priority.AHEAD)
        now[0] = 11.0
        assert pool.wait_s() == 1.0
    finally:
        blocker.set()
        await pool.aclose()


async def test_a_preview_never_fills_the_calls_cache(node: NodeSynthesis) -> None:
    tts = GatedTts()
    preview = node.speech_for(tts, "org-a", preview=True)
    assert await spoken(preview, "Hello there.")
    assert len(node.cache) == 0  # the calls' cache is untouched
    assert len(node.preview_cache) == 1
    assert await spoken(preview, "Hello there.")  # again: from its own cache
    assert tts.synthesized == ["Hello there."]
    # A call then says it: the previewed audio becomes the call's, not synthesized again.
    assert await spoken(node.speech_for(tts, "org-a"), "Hello there.")
    assert tts.synthesized == ["Hello there."]
    assert (len(node.cache), len(node.preview_cache)) == (1, 0)
    # A preview reads a call's sentence it finds in the cache.
    assert await spoken(preview, "Hello there.")
    assert tts.synthesized == ["Hello there."]


async def test_the_previews_cache_is_a_small_share_of_the_calls() -> None:
    synthesis = NodeSynthesis(WorkerPool(workers=1), SynthesisCache(16 * 1024 * 1024))
    assert synthesis.preview_cache.max_bytes == 1024 * 1024
    await synthesis.pool.aclose()


async def test_a_call_waiting_for_a_previews_sentence_promotes_it(node: NodeSynthesis) -> None:
    tts = GatedTts()
    gates = [tts.gate("Busy one."), tts.gate("Busy two.")]
    for text in ("Busy one.", "Busy two."):  # both workers taken by calls' sentences
        node.prepare(tts, "org-b", text)
    await until(lambda: node.pool.running == 2)
    previewed = asyncio.ensure_future(
        spoken(node.speech_for(tts, "org-a", preview=True), "Shared sentence.")
    )
    await until(lambda: node.pool.spare_waiting == 1)
    node.prepare(tts, "org-b", "Ahead of time.")
    answered = asyncio.ensure_future(spoken(node.speech_for(tts, "org-a"), "Shared sentence."))
    await until(lambda: node.pool.spare_waiting == 0)  # the call's now
    gates[0].set()
    assert await asyncio.wait_for(answered, 5) == await asyncio.wait_for(previewed, 5)
    gates[1].set()
    await until(lambda: "Ahead of time." in tts.synthesized)
    assert tts.synthesized.index("Shared sentence.") < tts.synthesized.index("Ahead of time.")
    assert tts.synthesized.count("Shared sentence.") == 1
    assert SynthesisKey("org-a", tts.voice_identity, "Shared sentence.") in node.cache


async def test_a_preview_waiting_for_a_calls_sentence_never_promotes_it(
    node: NodeSynthesis,
) -> None:
    tts = GatedTts()
    gates = [tts.gate("Busy one."), tts.gate("Busy two.")]
    for text in ("Busy one.", "Busy two."):
        node.prepare(tts, "org-b", text)
    await until(lambda: node.pool.running == 2)
    held = node.prepare(tts, "org-a", "Greeting ahead.")
    previewed = asyncio.ensure_future(
        spoken(node.speech_for(tts, "org-a", preview=True), "Greeting ahead.")
    )
    due = asyncio.ensure_future(spoken(node.speech_for(tts, "org-b"), "A caller waits."))
    await until(lambda: node.pool.waiting == 2)
    assert node.pool.spare_waiting == 0  # the preview shares the call's job, ahead
    gates[0].set()
    await asyncio.wait_for(due, 5)
    gates[1].set()
    assert await asyncio.wait_for(previewed, 5)
    # the caller's sentence went first: the preview did not make the greeting due
    assert tts.synthesized.index("A caller waits.") < tts.synthesized.index("Greeting ahead.")
    held.release()
    assert SynthesisKey("org-a", tts.voice_identity, "Greeting ahead.") in node.cache


async def test_previews_past_the_pools_bound_are_refused() -> None:
    node = NodeSynthesis(WorkerPool(workers=1, max_spare=1), SynthesisCache(1024 * 1024))
    tts = GatedTts()
    gate = tts.gate("Busy.")
    try:
        node.prepare(tts, "org-b", "Busy.")
        await until(lambda: node.pool.running == 1)
        first = asyncio.ensure_future(spoken(node.speech_for(tts, "org-a", preview=True), "One."))
        await until(lambda: node.pool.spare_waiting == 1)
        with pytest.raises(PoolFull):
            await spoken(node.speech_for(tts, "org-a", preview=True), "Two.")
        gate.set()
        assert await asyncio.wait_for(first, 5)
        assert not node._pending
    finally:
        gate.set()
        await node.pool.aclose()
