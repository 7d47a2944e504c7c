"""The node's worker pools: blocking speech work off the event loop, bounded, by priority.

Speech synthesis (``pipeline/speaking/synthesis.py``) and speech recognition
(``pipeline/hearing/recognition.py``) each have one ``WorkerPool`` per process (the call runner owns
them). At most ``workers`` jobs run at once (default: the machine's cores); the others wait in order
of priority, then of submission: ``DUE`` work a caller is waiting for (a greeting after the answer,
the next sentence of a reply, the final transcript of the caller's turn) goes before ``AHEAD`` work
not due yet (a greeting synthesized while the call rings, an interim transcript of a turn still
spoken), which goes before ``SPARE`` work done with the capacity calls leave over (a voice preview).
A job waiting ``AHEAD`` or ``SPARE`` is ``promote``d when a caller starts waiting for it (or a
call starts preparing it ahead): it is then that caller's work.

``SPARE`` work is done only while the pool has nothing else to do: one ``SPARE`` job at a time,
started only when no other job runs or waits. So a caller's job is never queued behind one and
competes for the CPU with at most the one ``SPARE`` job that was already running when it came
(a job cannot be interrupted once it runs; in a pool of more than one worker, a caller's job
always finds a free worker; in a pool of one, it waits at most for that ``SPARE`` job). On a
pool that is never idle, ``SPARE`` work waits. It has its own bound, ``max_spare`` jobs waiting
(``PoolFull`` beyond), apart from ``max_waiting``.

The pool measures how far behind it is: ``wait_s()`` is the longer of the age of the oldest
job still waiting for a worker and the longest wait of the jobs that started within the last
``window_s``, ``DUE`` or ``AHEAD`` (work ahead that waits is late too: a speculative final
that comes late lengthens the caller's endpointing; ``SPARE`` work is never late, it waits for
spare capacity by design). That is the signal admission control
compares with its bound (``pipeline/hearing/recognition.py``).

The queue may be bounded by ``max_waiting`` jobs for work not due yet (the synthesis pool:
``[speech] synthesis_queue``): an ``AHEAD`` job that would not fit is refused (``PoolFull``,
nothing queued) and its work is done when a caller waits for it (a greeting is then
synthesized after the answer, as without synthesis ahead). A ``DUE`` job is never refused nor
dropped: a waiting caller's work is always queued, whatever the bound.

Everything but the work itself runs on the event loop thread (no locks): ``submit`` returns a
``Job`` at once; its ``future`` completes with the worker's result. A job cancelled before it
started (``cancel``, or its future cancelled by the task awaiting it) never runs and waits no
more at once; one already running finishes in its thread (it cannot be interrupted) and still
holds its worker until then, so the bound holds.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import heapq
import itertools
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Generic, Protocol, TypeVar

log = logging.getLogger("voicedock.pipeline")

T = TypeVar("T")

WAIT_WINDOW_S = 2.0  # how long a job's wait for a worker still counts in wait_s()


class PoolFull(RuntimeError):
    """An ``AHEAD`` job refused (``max_waiting`` jobs wait already), or a ``SPARE`` one
    (``max_spare`` ``SPARE`` jobs wait already)."""


class Priority(enum.IntEnum):
    DUE = 0  # a caller is waiting for this result
    AHEAD = 1  # worked out ahead of time (while the call rings, while the caller speaks)
    SPARE = 2  # nobody calls for it: spare capacity only (a voice preview)


class _Queued(Protocol):
    """A job as the pool queues and starts it, whatever its result's type."""

    priority: Priority
    started: bool
    queued_at: float

    def done(self) -> bool: ...

    def cancel(self) -> None: ...

    def start(self, executor: ThreadPoolExecutor) -> None: ...


class Job(Generic[T]):
    """One job in the pool: ``await job.future`` for its result."""

    def __init__(self, pool: WorkerPool, fn: Callable[[], T], priority: Priority) -> None:
        self._pool = pool
        self.fn = fn
        self.priority = priority
        self.future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.started = False
        self.queued_at = pool.clock()
        # A task awaiting the future directly cancels it when it is cancelled (a call that
        # ends while its interim waits): the job then waits no more, as with ``cancel``.
        self.future.add_done_callback(self._done)

    def promote(self, priority: Priority = Priority.DUE) -> None:
        """A caller waits for it now (``DUE``: ahead of every job not due yet), or a call
        prepares it ahead (``AHEAD``); never lowers its priority."""
        if not self.started and priority < self.priority:
            self._pool._spare.discard(self)
            self.priority = priority
            self._pool._queue(self)

    def cancel(self) -> None:
        """Never run it (no effect once started: it finishes, its result unused)."""
        if not self.started:
            self.future.cancel()
            self._pool._forget(self)

    def done(self) -> bool:
        """Whether its result is settled (or it was cancelled)."""
        return self.future.done()

    def start(self, executor: ThreadPoolExecutor) -> None:
        """Run it in ``executor``; its result settles the future back on this loop."""
        running = executor.submit(self.fn)
        running.add_done_callback(partial(_call_soon, asyncio.get_running_loop(), self._finished))

    def _finished(self, result: ThreadFuture[T]) -> None:
        if not self.future.done():
            exc = result.exception()
            if exc is not None:
                self.future.set_exception(exc)
            else:
                self.future.set_result(result.result())
        self._pool._finished(self)

    def _done(self, future: asyncio.Future[T]) -> None:
        if future.cancelled() and not self.started:
            self._pool._forget(self)


class WorkerPool:
    def __init__(
        self,
        workers: int | None = None,
        *,
        name: str = "worker",
        max_waiting: int | None = None,
        max_spare: int | None = None,
        window_s: float = WAIT_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.workers = max(1, workers if workers else (os.cpu_count() or 1))
        self.name = name  # its threads' name prefix
        self.max_waiting = None if max_waiting is None else max(0, max_waiting)  # None: unbounded
        self.max_spare = None if max_spare is None else max(0, max_spare)  # None: unbounded
        self.clock = clock
        self.window_s = window_s
        self._executor: ThreadPoolExecutor | None = None
        self._heap: list[tuple[int, int, _Queued]] = []
        self._waiting: set[_Queued] = set()  # submitted, neither started nor cancelled
        self._spare: set[_Queued] = set()  # of those, the SPARE ones
        self._order = itertools.count()
        self.running = 0  # jobs in a worker thread now
        self.running_spare = 0  # of those, SPARE jobs
        self._closed = False
        # (when it started, how long it had waited) of the jobs started lately.
        self._waits: collections.deque[tuple[float, float]] = collections.deque()
        self.started = dict.fromkeys(Priority, 0)  # jobs started, by priority

    def submit(self, fn: Callable[[], T], priority: Priority = Priority.DUE) -> Job[T]:
        """Queue ``fn``; ``PoolFull`` for an ``AHEAD`` job when ``max_waiting`` jobs wait
        already, for a ``SPARE`` one when ``max_spare`` ``SPARE`` jobs do (a ``DUE`` job is
        always queued)."""
        if self._closed:
            raise RuntimeError(f"the {self.name} pool is closed")
        if priority is Priority.SPARE:
            if self.max_spare is not None and len(self._spare) >= self.max_spare:
                raise PoolFull(f"{len(self._spare)} spare {self.name} jobs wait already")
        elif priority is Priority.AHEAD and self.max_waiting is not None:
            waiting = len(self._waiting) - len(self._spare)
            if waiting >= self.max_waiting:
                raise PoolFull(f"{waiting} {self.name} jobs wait already")
        job = Job(self, fn, priority)
        self._waiting.add(job)
        if priority is Priority.SPARE:
            self._spare.add(job)
        self._queue(job)
        return job

    async def run(self, fn: Callable[[], T], priority: Priority = Priority.DUE) -> T:
        """``fn()`` in the pool; cancelling the caller cancels a job not started yet."""
        job = self.submit(fn, priority)
        try:
            return await asyncio.shield(job.future)
        except asyncio.CancelledError:
            job.cancel()
            raise

    @property
    def waiting(self) -> int:
        """Jobs waiting for a worker (``SPARE`` ones included)."""
        return len(self._waiting)

    @property
    def spare_waiting(self) -> int:
        """``SPARE`` jobs waiting for a worker."""
        return len(self._spare)

    def wait_s(self) -> float:
        """How long work waits for a worker now: the oldest waiting job's age, or the longest
        wait of a job started within the window, whichever is longer (``SPARE`` work aside)."""
        now = self.clock()
        while self._waits and self._waits[0][0] < now - self.window_s:
            self._waits.popleft()
        longest = max((wait for _, wait in self._waits), default=0.0)
        for job in self._waiting:
            if job.priority is not Priority.SPARE:
                longest = max(longest, now - job.queued_at)
        return longest

    def _forget(self, job: _Queued) -> None:
        self._waiting.discard(job)
        self._spare.discard(job)

    def _queue(self, job: _Queued) -> None:
        # A promoted job is queued again; its older entry is skipped when popped.
        heapq.heappush(self._heap, (int(job.priority), next(self._order), job))
        self._dispatch()

    def _dispatch(self) -> None:
        while self.running < self.workers and self._heap and not self._closed:
            _, _, job = self._heap[0]
            if job.started or job.done() or int(job.priority) != self._heap[0][0]:
                heapq.heappop(self._heap)  # cancelled, or an entry left behind by a promotion
                continue
            if job.priority is Priority.SPARE and self.running:
                return  # what is left is SPARE: it waits until nothing else runs
            heapq.heappop(self._heap)
            job.started = True
            self._forget(job)
            self.running += 1
            self.started[job.priority] += 1
            if job.priority is Priority.SPARE:
                self.running_spare += 1
            else:
                now = self.clock()
                self._waits.append((now, now - job.queued_at))
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix=self.name)
            job.start(self._executor)

    def _finished(self, job: _Queued) -> None:
        self.running -= 1
        if job.priority is Priority.SPARE:  # never changes once started
            self.running_spare -= 1
        self._dispatch()

    async def aclose(self) -> None:
        """Cancel what waits, wait for what runs (idempotent)."""
        self._closed = True
        for _, _, job in self._heap:
            job.cancel()
        self._heap.clear()
        self._waiting.clear()
        self._spare.clear()
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True)


def _call_soon(
    loop: asyncio.AbstractEventLoop,
    callback: Callable[[ThreadFuture[T]], None],
    result: ThreadFuture[T],
) -> None:
    try:
        loop.call_soon_threadsafe(callback, result)
    except RuntimeError:  # the loop is closed: nobody waits for the result any more
        log.debug("pool job finished after its event loop closed")
