"""Writes that wait for the store: retried while it is ``StoreUnavailable``, in order per key.

    await until_stored(lambda: write(), what="transcript turn")   # inline: waits and retries

    backlog = WriteBacklog(limit=10_000)
    await backlog.start()                     # a Supervisor owns the per-key drainers
    await backlog.submit(call_id, work, what="...")  # now if nothing is queued, else queued
    await backlog.aclose(grace=10.0)          # drains what it can, then cancels (logged)

Keys are never logged (they may be call ids); ``what`` names a work in the log.

``submit`` runs the work at once when nothing is queued: no extra task, no delay while the
store is healthy. If that attempt raises ``StoreUnavailable`` the work is queued, and so is
every later work (of any key, so that an outage costs one failed attempt, not one per call)
until the queues are empty again. A key's writes are applied in the order they were
submitted, each retried with capped backoff until the store takes it. A work is one whole
attempt (for instance one transaction), so retrying it after
``StoreUnavailable`` (nothing committed) is safe. Other errors of a queued work are logged and
the key moves on, as they would be for an inline work.

The backlog is bounded by ``limit`` works over all keys. Beyond it ``submit`` does not drop
nor reorder anything: it logs an error (once per overflow) and waits for room, which slows the
producer (the PBX adapter's event consumer) instead of losing what the PBX said.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import TypeVar

from voicedock.aio import Supervisor
from voicedock.errors import StoreUnavailable

T = TypeVar("T")
Work = Callable[[], Awaitable[None]]

log = logging.getLogger("voicedock.store")

FIRST_DELAY = 0.05
MAX_DELAY = 1.0
LOG_EVERY = 10.0  # seconds between "still waiting" warnings of one retrying write


async def until_stored(
    attempt: Callable[[], Awaitable[T]],
    *,
    what: str,
    first_delay: float = FIRST_DELAY,
    max_delay: float = MAX_DELAY,
) -> T:
    """``await attempt()`` until it does not raise ``StoreUnavailable`` (capped backoff).

    Waits as long as the outage lasts: cancellation is the only way out. ``what`` names the
    write in the log (never its content)."""
    loop = asyncio.get_running_loop()
    delay = first_delay
    started = last_log = loop.time()
    failures = 0
    while True:
        try:
            result = await attempt()
        except StoreUnavailable as exc:
            failures += 1
            now = loop.time()
            if failures == 1 or now - last_log >= LOG_EVERY:
                last_log = now
                log.warning(
                    "store unavailable for %s (%.1fs, %d attempts), retrying: %s",
                    what,
                    now - started,
                    failures,
                    exc,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
            continue
        if failures:
            log.info(
                "%s stored after %.1fs (%d failed attempts)", what, loop.time() - started, failures
            )
        return result


class WriteBacklog:
    """Per-key ordered queues of works waiting for the store (see the module docstring)."""

    def __init__(
        self,
        *,
        limit: int = 10_000,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
    ) -> None:
        self.limit = limit
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._queues: dict[str, collections.deque[tuple[Work, str]]] = {}
        self._size = 0
        self._room = asyncio.Event()  # set when a queued work leaves
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._overflowing = False
        self._tasks = Supervisor("store backlog", log)
        self._closed = False

    def __len__(self) -> int:
        """Works queued (not counting those that ran at once)."""
        return self._size

    def pending(self, key: str) -> bool:
        return key in self._queues

    async def start(self) -> None:
        if not self._tasks.running and not self._closed:
            await self._tasks.start()

    async def submit(self, key: str, work: Work, *, what: str) -> None:
        """Run ``work`` now, or queue it behind the key's earlier works (module docstring).
        Raises what an immediate attempt raises, except ``StoreUnavailable``."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one submission of a key at a time: its order is the call order
            if not self._queues:  # nothing waiting: the store was fine a moment ago
                # Not started (or closing): wait inline, still in order.
                if not self._tasks.running or self._closed:
                    await until_stored(
                        work, what=what, first_delay=self._first_delay, max_delay=self._max_delay
                    )
                    return
                try:
                    await work()
                except StoreUnavailable as exc:
                    log.warning("store unavailable; %s queued until it is back: %s", what, exc)
                else:
                    return
            await self._wait_for_room(what)
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = collections.deque()
                self._start_drainer(key, queue)
            queue.append((work, what))
            self._size += 1

    async def _wait_for_room(self, what: str) -> None:
        if self._size < self.limit:
            return
        if not self._overflowing:
            self._overflowing = True
            log.error(
                "store unavailable and %d writes are waiting (the limit): %s waits for room; "
                "the PBX's events are held back in order, nothing is dropped",
                self._size,
                what,
            )
        while self._size >= self.limit:
            self._room.clear()
            await self._room.wait()

    def _start_drainer(self, key: str, queue: collections.deque[tuple[Work, str]]) -> None:
        self._tasks.spawn(self._drain(key, queue), name="store-backlog")

    async def _drain(self, key: str, queue: collections.deque[tuple[Work, str]]) -> None:
        try:
            while queue:
                work, what = queue[0]
                try:
                    await until_stored(
                        work, what=what, first_delay=self._first_delay, max_delay=self._max_delay
                    )
                except Exception:
                    log.exception("%s failed after waiting for the store", what)
                queue.popleft()
                self._freed(1)
        finally:
            if self._queues.get(key) is queue:
                del self._queues[key]
            if queue:  # cancelled (shutdown): these never reached the store
                log.error(
                    "%d write(s) lost at shutdown, from %s on: the store stayed unavailable",
                    len(queue),
                    queue[0][1],
                )
                self._freed(len(queue))
                queue.clear()

    def _freed(self, count: int) -> None:
        self._size -= count
        if self._size < self.limit:
            if self._overflowing:
                self._overflowing = False
                log.warning("store backlog below its limit again (%d waiting)", self._size)
            self._room.set()

    async def aclose(self, grace: float = 10.0) -> None:
        """Let the queued writes finish for up to ``grace`` s, then cancel the rest (each
        loss is logged). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if drainers := self._tasks.children:
            await asyncio.wait(drainers, timeout=grace)
        await self._tasks.aclose()  # cancels the late ones


__all__ = ["WriteBacklog", "until_stored"]
