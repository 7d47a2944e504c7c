"""The one supervisor and the one race every owner of background tasks uses."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from collections.abc import Awaitable, Callable

import pytest

from voicedock.aio import Closable, Lanes, Supervisor, all_of, deliver, first_of, started

pytestmark = pytest.mark.unit

log = logging.getLogger("test.aio")
Awaits = Awaitable[None]


async def test_a_failing_child_is_logged_and_leaves_its_siblings_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sibling_done = asyncio.Event()

    async def fails() -> None:
        raise RuntimeError("boom")

    async def sibling() -> None:
        await asyncio.sleep(0.01)
        sibling_done.set()

    async with Supervisor("adapter", log) as tasks:
        tasks.spawn(fails())
        tasks.spawn(sibling())
        await asyncio.wait_for(sibling_done.wait(), 1)
    assert "adapter: background task crashed" in caplog.text


async def test_an_expected_failure_is_one_warning_line(caplog: pytest.LogCaptureFixture) -> None:
    async def fails() -> None:
        raise ValueError("pbx said no")

    async with Supervisor("adapter", log, expected=(ValueError,)) as tasks:
        task = tasks.spawn(fails())
        assert task is not None
        await asyncio.wait({task})
    [record] = [r for r in caplog.records if r.name == "test.aio"]
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert "pbx said no" in record.getMessage()


async def test_the_owner_hears_of_each_failure_after_it_was_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[tuple[str, bool]] = []

    def on_error(exc: Exception) -> None:  # e.g. end the call
        heard.append((type(exc).__name__, "conversation:" in caplog.text))

    async def fails(exc: Exception) -> None:
        raise exc

    async with Supervisor("conversation", log, expected=(TimeoutError,), on_error=on_error) as s:
        children = [s.spawn(fails(TimeoutError())), s.spawn(fails(KeyError("bug")))]
        await asyncio.wait({t for t in children if t is not None})
    assert sorted(heard) == [("KeyError", True), ("TimeoutError", True)]
    # An expected failure without a message still says what it was.
    assert "conversation: background task failed: TimeoutError" in caplog.text


async def test_a_child_with_a_result_hands_it_over_or_the_failed_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def words() -> str:
        return "hello"

    async def broken() -> str:
        raise RuntimeError("stt bug")

    async with Supervisor("conversation", log) as tasks:
        heard = tasks.spawn_value(words(), "")
        lost = tasks.spawn_value(broken(), "")
        assert heard is not None
        assert lost is not None
        assert (await heard, await lost) == ("hello", "")
    assert "conversation: background task crashed" in caplog.text
    closed = words()
    assert tasks.spawn_value(closed, "") is None
    assert closed.cr_frame is None


async def test_a_child_whose_outcome_is_awaited_hands_over_its_result_or_its_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sibling_done = asyncio.Event()
    never = asyncio.Event()

    async def speech() -> str:
        return "briefing"

    async def broken() -> str:
        raise RuntimeError("tts bug")

    async def sibling() -> None:
        await asyncio.sleep(0.01)
        sibling_done.set()

    async def forever() -> str:
        await never.wait()
        return "unheard"

    async with Supervisor("warm transfer", log) as tasks:
        voice = tasks.spawn_result(speech())
        failed = tasks.spawn_result(broken())
        unawaited = tasks.spawn_result(broken())
        tasks.spawn(sibling())
        pending = tasks.spawn_result(forever())
        assert voice is not None
        assert failed is not None
        assert unawaited is not None
        assert pending is not None
        assert await voice == "briefing"
        with pytest.raises(RuntimeError, match="tts bug"):
            await failed
        await asyncio.wait_for(sibling_done.wait(), 1)  # the failures cancelled no sibling
        await asyncio.wait({unawaited})
    assert pending.cancelled()  # closed with its supervisor
    assert caplog.text.count("warm transfer: background task failed: RuntimeError: tts bug") == 2
    closed = speech()
    assert tasks.spawn_result(closed) is None
    assert closed.cr_frame is None


async def test_drain_waits_for_children_to_finish_their_work() -> None:
    finished: list[str] = []
    release = asyncio.Event()

    async def work(name: str, then: str | None = None) -> None:
        await release.wait()
        await asyncio.sleep(0.01)
        finished.append(name)
        if then is not None:
            tasks.spawn(work(then))  # spawned while draining: waited for too

    tasks = Supervisor("runner", log)
    await tasks.start()
    tasks.spawn(work("warm-up", then="late"))
    tasks.spawn(work("call"))
    drained = asyncio.ensure_future(tasks.drain())
    await asyncio.sleep(0.02)
    assert not drained.done()  # nothing is cancelled: it waits
    release.set()
    await asyncio.wait_for(drained, 1)
    assert sorted(finished) == ["call", "late", "warm-up"]
    await tasks.aclose()


async def test_aclose_cancels_children_and_is_idempotent() -> None:
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    tasks = Supervisor("owner", log)
    await tasks.start()
    tasks.spawn(forever())
    await asyncio.sleep(0)
    await tasks.aclose()
    await tasks.aclose()
    assert cancelled.is_set()
    assert not tasks.children
    assert not tasks.running


async def test_a_child_that_drains_does_not_wait_for_itself() -> None:
    tasks = Supervisor("media", log)
    await tasks.start()

    async def closes_its_owner() -> str:  # e.g. a hang-up from the session's own loop
        await tasks.drain()
        return "drained"

    task = tasks.spawn_value(closes_its_owner(), "")
    assert task is not None
    assert await asyncio.wait_for(task, 1) == "drained"
    await tasks.aclose()


async def test_a_second_aclose_returns_once_the_children_are_gone() -> None:
    stopping = asyncio.Event()
    stopped = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopping.set()
            await asyncio.shield(asyncio.sleep(0.02))  # e.g. a final write
            stopped.set()

    tasks = Supervisor("media", log)
    await tasks.start()
    tasks.spawn(slow_to_stop())
    await asyncio.sleep(0)
    first = asyncio.ensure_future(tasks.aclose())
    await stopping.wait()
    await tasks.aclose()  # the owner's exit while a hang-up closes it
    assert stopped.is_set()
    await first


async def test_a_coroutine_spawned_after_aclose_is_closed_not_leaked() -> None:
    tasks = Supervisor("owner", log)
    await tasks.start()
    await tasks.aclose()
    ran = False

    async def late() -> None:
        nonlocal ran
        ran = True

    coro = late()
    assert tasks.spawn(coro) is None
    assert coro.cr_frame is None  # closed: no "never awaited" warning
    assert not ran
    with pytest.raises(RuntimeError):
        await tasks.start()


async def test_first_of_returns_the_first_and_cancels_the_others() -> None:
    slow_cancelled = asyncio.Event()

    async def slow() -> str:
        try:
            await asyncio.sleep(10)
        finally:
            slow_cancelled.set()
        return "slow"

    async def fast() -> str:
        await asyncio.sleep(0.01)
        return "fast"

    assert await first_of(slow(), fast()) == (1, "fast")
    assert slow_cancelled.is_set()


async def test_first_of_gives_up_with_none_and_raises_the_first_failure() -> None:
    assert await first_of(asyncio.Event().wait(), within=0.01) is None

    async def fails() -> None:
        raise LookupError("gone")

    with pytest.raises(LookupError):
        await first_of(fails(), asyncio.sleep(10))


async def test_first_of_leaves_a_callers_task_running() -> None:
    theirs = asyncio.ensure_future(asyncio.sleep(10))
    try:
        assert await first_of(theirs, asyncio.sleep(0.01, "mine")) == (1, "mine")
        assert not theirs.done()
    finally:
        theirs.cancel()


async def test_first_of_cancelled_cancels_what_it_started() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def child() -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        finally:
            cancelled.set()

    race = asyncio.ensure_future(first_of(child()))
    await started.wait()
    race.cancel()
    with pytest.raises(asyncio.CancelledError):
        await race
    assert cancelled.is_set()


async def test_all_of_runs_together_and_returns_every_result_in_order() -> None:
    running = 0
    peak = 0

    async def one(value: str, delay: float) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(delay)
        running -= 1
        return value

    assert await all_of(one("a", 0.03), one("b", 0.01)) == ["a", "b"]
    assert peak == 2  # in flight together


async def test_all_of_raises_the_first_failure_as_itself_and_cancels_the_rest() -> None:
    other_cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            other_cancelled.set()

    async def fails() -> None:
        await asyncio.sleep(0.01)
        raise LookupError("gone")

    with pytest.raises(LookupError):  # not an exception group
        await all_of(slow(), fails())
    assert other_cancelled.is_set()


async def test_deliver_hands_events_in_order_and_a_failing_handler_costs_only_its_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    seen: list[int] = []
    all_seen = asyncio.Event()

    async def handler(event: int) -> None:
        seen.append(event)
        if event == 2:
            raise RuntimeError("bad event")
        if event == 3:
            all_seen.set()

    for event in (1, 2, 3):
        queue.put_nowait(event)
    async with Supervisor("client", log) as tasks:
        tasks.spawn(deliver(queue, handler, log, "ARI"))
        await asyncio.wait_for(all_seen.wait(), 5)
    assert seen == [1, 2, 3]
    assert "ARI event handler failed for int" in caplog.text


async def test_a_child_cancelled_in_a_timeout_is_freed_without_the_collector() -> None:
    """A cancelled task keeps its ``CancelledError``, whose traceback holds the frames it was
    cancelled in: through an ``asyncio.timeout`` there, the task itself. The supervisor takes
    that error from its child, so what the child held goes when the child does."""

    class Held:
        pass

    held: list[weakref.ref[Held]] = []
    started = asyncio.Event()

    async def child() -> None:
        mine = Held()
        held.append(weakref.ref(mine))
        async with asyncio.timeout(60) as deadline:  # a local that holds the task
            assert deadline.when() is not None
            started.set()
            await asyncio.sleep(60)

    enabled = gc.isenabled()
    gc.disable()
    try:
        async with Supervisor("owner", log) as tasks:
            task = tasks.spawn(child())
            await started.wait()
            assert task is not None
            task.cancel()
            await asyncio.wait([task])
            del task
        assert [ref() for ref in held] == [None]
    finally:
        if enabled:
            gc.enable()


class _Resource(Closable):
    def __init__(self, fails: BaseException | None = None) -> None:
        self.fails = fails
        self.closed = 0

    async def start(self) -> None:
        if self.fails is not None:
            raise self.fails

    async def aclose(self) -> None:
        self.closed += 1


async def test_started_hands_back_the_resource_and_leaves_it_open() -> None:
    resource = _Resource()
    assert await started(resource, resource.start) is resource
    assert resource.closed == 0


@pytest.mark.parametrize("failure", [RuntimeError("no socket"), asyncio.CancelledError()])
async def test_a_start_that_fails_or_is_cancelled_closes_the_resource_and_raises(
    failure: BaseException,
) -> None:
    resource = _Resource(failure)
    with pytest.raises(type(failure)):
        await started(resource, resource.start)
    assert resource.closed == 1


async def test_lanes_keep_each_keys_order_and_let_other_keys_pass_a_slow_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[str] = []
    release = asyncio.Event()

    def work(name: str, *, held: bool = False, fails: bool = False) -> Callable[[], Awaits]:
        async def run() -> None:
            if held:
                await release.wait()
            if fails:
                raise RuntimeError(name)
            done.append(name)

        return run

    async with Supervisor("lanes", log) as tasks:
        lanes = Lanes(tasks, log)
        await lanes.submit("a", work("a1", held=True))
        await lanes.submit("a", work("a2", fails=True))
        await lanes.submit("a", work("a3"))
        await lanes.submit("b", work("b1"))
        await lanes.submit("b", work("b2"))
        async with asyncio.timeout(1):
            while done != ["b1", "b2"]:  # b's works pass a's held one
                await asyncio.sleep(0)
        assert len(lanes) == 3
        release.set()
        async with asyncio.timeout(1):
            await lanes.drained()
        assert done == ["b1", "b2", "a1", "a3"]  # a's in order; its failed work cost only itself
        assert len(lanes) == 0
        assert "a queued work failed" in caplog.text
        await lanes.submit("a", work("a4"))  # a key whose lane ended gets a new one
        async with asyncio.timeout(1):
            await lanes.drained()
    assert done[-1] == "a4"


async def test_lanes_slow_the_producer_at_their_limit_and_end_with_their_owner() -> None:
    release = asyncio.Event()
    ran: list[int] = []

    def held(n: int) -> Callable[[], Awaits]:
        async def run() -> None:
            await release.wait()
            ran.append(n)

        return run

    tasks = Supervisor("lanes", log)
    await tasks.start()
    lanes = Lanes(tasks, log, limit=2)
    await lanes.submit("a", held(1))
    await lanes.submit("b", held(2))
    third = asyncio.create_task(lanes.submit("c", held(3)))
    await asyncio.sleep(0.01)
    assert not third.done()  # two works queued: the producer waits for room
    release.set()
    async with asyncio.timeout(1):
        await third
        await lanes.drained()
    assert sorted(ran) == [1, 2, 3]
    release.clear()
    await lanes.submit("a", held(4))
    await tasks.aclose()  # the owner closes: the lane is cancelled with what it held
    async with asyncio.timeout(1):
        await lanes.drained()
    assert len(lanes) == 0
    await lanes.submit("a", held(5))  # after: nothing runs, nothing is left waiting
    assert len(lanes) == 0
    assert sorted(ran) == [1, 2, 3]
