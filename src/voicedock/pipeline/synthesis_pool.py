"""The node's synthesis pool: blocking speech synthesis off the event loop, bounded, by priority.

One pool per process (the call runner owns it). At most ``workers`` syntheses run at once
(default: the machine's cores); the others wait in order of priority, then of submission:
``DUE`` audio a caller is waiting for (a greeting after the answer, the next sentence of a
reply) goes before ``AHEAD`` audio not due yet (a greeting synthesized while the call rings).
A job waiting ``AHEAD`` is ``promote``d to ``DUE`` when a caller starts waiting for it.

The queue is bounded by ``max_waiting`` jobs (``[speech] synthesis_queue``) for audio not due
yet: an ``AHEAD`` job that would not fit is refused (``SynthesisPoolFull``, nothing queued) and
its text is synthesized when a caller waits for it, as without synthesis ahead. A ``DUE`` job
is never refused nor dropped: a waiting caller's audio is always queued, whatever the bound.

Everything but the synthesis itself runs on the event loop thread (no locks): ``submit``
returns a ``Job`` at once; its ``future`` completes with the worker's result. A job
cancelled before it started never runs; one already running finishes in its thread (a
synthesis cannot be interrupted) and still holds its worker until then, so the bound holds.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import itertools
import logging
import os
from collections.abc import Callable
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Generic, TypeVar

log = logging.getLogger("voicedock.pipeline")

T = TypeVar("T")

DEFAULT_MAX_WAITING = 500  # jobs waiting for a worker before audio not due yet is refused


class SynthesisPoolFull(RuntimeError):
    """An ``AHEAD`` job refused: ``max_waiting`` jobs wait already."""


class Priority(enum.IntEnum):
    DUE = 0  # a caller is waiting for this audio
    AHEAD = 1  # synthesized ahead of time (while the call rings)


class Job(Generic[T]):
    """One synthesis in the pool: ``await job.future`` for its result."""

    def __init__(self, pool: SynthesisPool, fn: Callable[[], T], priority: Priority) -> None:
        self._pool = pool
        self.fn = fn
        self.priority = priority
        self.future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.started = False

    def promote(self) -> None:
        """A caller waits for it now: ahead of every job not due yet."""
        if not self.started and self.priority is not Priority.DUE:
            self.priority = Priority.DUE
            self._pool._queue(self)

    def cancel(self) -> None:
        """Never run it (no effect once started: it finishes, its result unused)."""
        if not self.started:
            self.future.cancel()
            self._pool._waiting.discard(self)


class SynthesisPool:
    def __init__(self, workers: int | None = None, max_waiting: int = DEFAULT_MAX_WAITING) -> None:
        self.workers = max(1, workers if workers else (os.cpu_count() or 1))
        self.max_waiting = max(0, max_waiting)
        self._executor: ThreadPoolExecutor | None = None
        self._heap: list[tuple[int, int, Job[Any]]] = []
        self._waiting: set[Job[Any]] = set()  # submitted, neither started nor cancelled
        self._order = itertools.count()
        self.running = 0  # jobs in a worker thread now
        self._closed = False

    def submit(self, fn: Callable[[], T], priority: Priority = Priority.DUE) -> Job[T]:
        """Queue ``fn``; ``SynthesisPoolFull`` for an ``AHEAD`` job when ``max_waiting`` jobs
        wait already (a ``DUE`` job is always queued)."""
        if self._closed:
            raise RuntimeError("the synthesis pool is closed")
        if priority is not Priority.DUE and len(self._waiting) >= self.max_waiting:
            raise SynthesisPoolFull(f"{len(self._waiting)} syntheses wait already")
        job = Job(self, fn, priority)
        self._waiting.add(job)
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
        """Jobs waiting for a worker."""
        return len(self._waiting)

    def _queue(self, job: Job[T]) -> None:
        # A promoted job is queued again; its older entry is skipped when popped.
        heapq.heappush(self._heap, (int(job.priority), next(self._order), job))
        self._dispatch()

    def _dispatch(self) -> None:
        while self.running < self.workers and self._heap and not self._closed:
            _, _, job = heapq.heappop(self._heap)
            if job.started or job.future.done():
                continue  # cancelled, or an entry left behind by a promotion
            job.started = True
            self._waiting.discard(job)
            self.running += 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="synthesis")
            done = self._executor.submit(job.fn)
            done.add_done_callback(
                partial(_call_soon, asyncio.get_running_loop(), self._finished, job)
            )

    def _finished(self, job: Job[Any], result: ThreadFuture[Any]) -> None:
        self.running -= 1
        if not job.future.done():
            exc = result.exception()
            if exc is not None:
                job.future.set_exception(exc)
            else:
                job.future.set_result(result.result())
        self._dispatch()

    async def aclose(self) -> None:
        """Cancel what waits, wait for what runs (idempotent)."""
        self._closed = True
        for _, _, job in self._heap:
            job.cancel()
        self._heap.clear()
        self._waiting.clear()
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True)


def _call_soon(
    loop: asyncio.AbstractEventLoop,
    callback: Callable[[Job[Any], ThreadFuture[Any]], None],
    job: Job[Any],
    result: ThreadFuture[Any],
) -> None:
    try:
        loop.call_soon_threadsafe(callback, job, result)
    except RuntimeError:  # the loop is closed: nobody waits for the result any more
        log.debug("synthesis finished after its event loop closed")
