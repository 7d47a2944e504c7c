"""Structured concurrency helpers: one ``Supervisor`` per resource owner, and ``first_of``.

``Supervisor`` owns the background tasks of one object (a PBX adapter, a live call, a
client's reader): it enters a ``TaskGroup`` when started, runs every child through one
guard (a failure is logged with the owner's name and never cancels the siblings nor the
owner; ``on_error`` lets the owner act on it, e.g. end the call), and ``aclose`` cancels the
children and waits for them. An owner whose children finish their work at close (a call's
record, the last words) awaits ``drain`` first; one that awaits a child's outcome itself (its
result or its exception) spawns it with ``spawn_result``. Nothing it spawned outlives it; a
coroutine handed to a closed supervisor is closed, never leaked.

``first_of`` is the one race: run some awaitables, return the index and result of the first
to finish, cancel the rest that it started and wait for them. Futures and tasks it was given
but did not create belong to the caller and are left running. ``all_of`` runs independent
coroutines together (requests to one server, say) and returns all their results; the first
failure cancels the others and is raised as itself, not as an exception group. ``deliver``
hands a queue's items to one handler in order, a failing one logged and the next delivered;
``Lanes`` runs works in order per key and different keys' side by side (a PBX's events: in
order per call, no call waiting behind another's). ``started`` starts a ``Closable`` and
closes it again if starting fails.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Self, TypeAlias, TypeVar

T = TypeVar("T")

Coro: TypeAlias = Coroutine[object, None, T]
"""A coroutine the event loop can run to a ``T`` (what ``async def`` returns)."""


class Closable:
    """A resource closed by its ``aclose()`` (idempotent), which leaving ``async with`` awaits
    whatever ended the block; what entering starts (its ``__aenter__``) is its own."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


class Started(Closable):
    """A ``Closable`` whose ``start()`` entering ``async with`` awaits."""

    async def start(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self


class Supervisor(Started):
    """The owner of one object's background tasks. ``start``/``aclose`` or ``async with``."""

    def __init__(
        self,
        name: str,
        log: logging.Logger,
        *,
        expected: tuple[type[BaseException], ...] = (),
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        """``on_error`` is told of each child's failure once it was logged (the owner ends a
        call, say); it must not raise."""
        self.name = name
        self._log = log
        self._expected = expected  # logged as one warning line, without a traceback
        self._on_error = on_error
        self._group: asyncio.TaskGroup | None = None
        self._children: set[asyncio.Task[object]] = set()
        self._closed = False

    @property
    def running(self) -> bool:
        return self._group is not None and not self._closed

    async def start(self) -> None:
        if self._group is not None or self._closed:
            raise RuntimeError(f"{self.name}: supervisor started twice or after aclose")
        group = asyncio.TaskGroup()
        await group.__aenter__()
        self._group = group

    def spawn(self, coro: Coro[object], *, name: str | None = None) -> asyncio.Task[None] | None:
        """Run ``coro`` as a guarded child; ``None`` (and ``coro`` closed) once closed."""
        return self._child(self._guard(coro), coro, name)

    def spawn_value(
        self, coro: Coro[T], failed: T, *, name: str | None = None
    ) -> asyncio.Task[T] | None:
        """``spawn`` for a child whose result is wanted: the task's result is ``coro``'s, or
        ``failed`` if it failed (logged as any child's failure)."""
        return self._child(self._guard_value(coro, failed), coro, name)

    def spawn_result(self, coro: Coro[T], *, name: str | None = None) -> asyncio.Future[T] | None:
        """For a child whose outcome the owner awaits (a briefing synthesized while a phone
        rings): the future ends as ``coro`` does, with its result or its exception, raised to
        whoever awaits it and never cancelling the siblings (one warning line is logged, so a
        failure nobody awaited is still seen); it is cancelled with the child."""
        outcome: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        task = self._child(self._handed_over(coro, outcome), coro, name)
        if task is None:
            return None
        task.add_done_callback(lambda _t: outcome.cancel())  # a no-op once it has an outcome
        return outcome

    def _child(
        self,
        guarded: Coro[T],
        coro: Coro[object],
        name: str | None,
    ) -> asyncio.Task[T] | None:
        if self._group is None or self._closed:
            guarded.close()
            coro.close()
            return None
        task = self._group.create_task(guarded, name=name)
        self._children.add(task)
        task.add_done_callback(self._children.discard)
        task.add_done_callback(_let_go)
        # A child cancelled before it first ran never awaited ``coro``: close it quietly.
        task.add_done_callback(lambda _t: coro.close())
        return task

    @property
    def children(self) -> frozenset[asyncio.Task[object]]:
        return frozenset(self._children)

    async def drain(self) -> None:
        """Wait until every child has ended by itself, those spawned meanwhile too (an owner
        whose children finish their work at close: ``drain`` then ``aclose``). A child that
        drains does not wait for itself."""
        me = asyncio.current_task()
        while others := {task for task in self._children if task is not me}:
            await asyncio.wait(others)

    async def aclose(self) -> None:
        """Cancel every child and wait for it. Idempotent: a call while another one closes
        returns once the children are gone."""
        if self._closed:
            await self.drain()
            return
        self._closed = True
        group, self._group = self._group, None
        if group is None:
            return
        for task in list(self._children):
            task.cancel()
        await group.__aexit__(None, None, None)

    async def _guard(self, coro: Awaitable[object]) -> None:
        try:
            await coro
        except self._expected as exc:
            self._log.warning("%s: background task failed: %s", self.name, _shown(exc))
            self._failed(exc)
        except Exception as exc:  # noqa: BLE001 - a child's crash is logged, never propagated
            self._log.exception("%s: background task crashed", self.name)
            self._failed(exc)

    async def _guard_value(self, coro: Awaitable[T], failed: T) -> T:
        result = failed

        async def run() -> None:
            nonlocal result
            result = await coro

        await self._guard(run())
        return result

    async def _handed_over(self, coro: Awaitable[T], outcome: asyncio.Future[T]) -> None:
        try:
            result = await coro
        except Exception as exc:  # noqa: BLE001 - the awaiter's to handle
            self._log.warning("%s: background task failed: %s", self.name, _shown(exc))
            if not outcome.done():
                outcome.set_exception(exc)
                outcome.exception()  # retrieved: logged above if nobody awaits it
            return
        if not outcome.done():
            outcome.set_result(result)

    def _failed(self, exc: BaseException) -> None:
        if self._on_error is not None and isinstance(exc, Exception):
            self._on_error(exc)


class Lanes:
    """Works run in order per key, different keys' side by side. A key with works queued has
    one task of the owner's ``Supervisor`` running them one after another; a key with none has
    no task. What a PBX's event stream needs: each call's events applied in order, and no call
    waiting behind another call's slow write.

    A work that fails is logged and its key goes on. ``submit`` waits only while ``limit``
    works are queued over all keys: the producer slows down, nothing is dropped. Closing the
    owner's supervisor cancels the lanes, with what they still hold."""

    def __init__(self, tasks: Supervisor, log: logging.Logger, *, limit: int = 10_000) -> None:
        self._tasks = tasks
        self._log = log
        self.limit = limit
        self._queues: dict[str, collections.deque[Callable[[], Awaitable[None]]]] = {}
        self._size = 0
        self._room = asyncio.Event()  # set when a work leaves its queue
        self._idle = asyncio.Event()  # set when no key has a work
        self._idle.set()

    def __len__(self) -> int:
        """Works queued or running, over all keys."""
        return self._size

    async def submit(self, key: str, work: Callable[[], Awaitable[None]]) -> None:
        """Queue ``work`` behind ``key``'s earlier works."""
        while self._size >= self.limit:
            self._room.clear()
            await self._room.wait()
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(work)
            self._size += 1
            return
        queue = self._queues[key] = collections.deque([work])
        self._size += 1
        self._idle.clear()
        task = self._tasks.spawn(self._run(key, queue), name="lane")
        if task is None:  # the owner closed
            self._left(key, queue)
        else:  # also when it is cancelled before it ever ran
            task.add_done_callback(lambda _task: self._left(key, queue))

    async def drained(self) -> None:
        """Return once no key has a work queued or running."""
        await self._idle.wait()

    async def _run(self, key: str, queue: collections.deque[Callable[[], Awaitable[None]]]) -> None:
        while queue:
            try:
                await queue[0]()
            except Exception:  # noqa: BLE001 - one work's failure never stops its key
                self._log.exception("a queued work failed")
            finally:
                queue.popleft()
                self._size -= 1
                self._room.set()
        self._left(key, queue)  # at once: a work submitted from now on starts a new lane

    def _left(self, key: str, queue: collections.deque[Callable[[], Awaitable[None]]]) -> None:
        """``key``'s lane ended: emptied, or cancelled with what it held (idempotent)."""
        self._size -= len(queue)
        queue.clear()
        if self._queues.get(key) is queue:
            del self._queues[key]
        if not self._queues:
            self._idle.set()
        self._room.set()


def _let_go(task: asyncio.Task[T]) -> None:
    """A child ended cancelled: its ``CancelledError`` is taken from the task. Kept, its
    traceback would hold the frames the child was cancelled in, and through them (an
    ``asyncio.timeout``, the owner) the task itself: a cycle only the collector frees."""
    if task.cancelled():
        with contextlib.suppress(asyncio.CancelledError):
            task.result()  # hands the saved error over, once; later awaiters get a new one


async def deliver(
    queue: asyncio.Queue[T], handler: Callable[[T], Awaitable[None]], log: logging.Logger, what: str
) -> None:
    """Hand each item of ``queue`` to ``handler``, one at a time and in order, until cancelled:
    a handler that fails is logged (``what``: whose events) and the next item is delivered, so
    one bad event never stops the stream for every other call."""
    while True:
        item = await queue.get()
        try:
            await handler(item)
        except Exception:
            log.exception("%s event handler failed for %s", what, type(item).__name__)


async def every(interval: float, step: Callable[[], Awaitable[object]]) -> None:
    """Await ``step()`` now and then every ``interval`` seconds, until cancelled: a
    housekeeping loop (recordings, retention) that a ``Supervisor`` owns."""
    while True:
        await step()
        await asyncio.sleep(interval)


def _shown(exc: BaseException) -> str:
    """An expected failure in its warning line: its type, and its message if it has one."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


async def first_of(*aws: Awaitable[T], within: float | None = None) -> tuple[int, T] | None:
    """Run ``aws`` together: ``(index, result)`` of the first to finish; ``None`` after ``within``.

    When several are done at once the lowest index wins. The first one's exception is raised.
    Every awaitable this function wrapped in a task is cancelled and awaited before it
    returns (also when it is cancelled itself); futures and tasks passed in stay the caller's.
    """
    if not aws:
        raise ValueError("first_of needs at least one awaitable")
    futures = [asyncio.ensure_future(aw) for aw in aws]
    owned = [fut for fut, aw in zip(futures, aws, strict=True) if fut is not aw]
    done: set[asyncio.Future[T]] = set()
    try:
        done, _ = await asyncio.wait(futures, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for fut in owned:
            fut.cancel()  # a no-op on one that finished
        if owned:
            await asyncio.wait(owned)
    for index, fut in enumerate(futures):
        if fut in done:
            return index, fut.result()
    return None


async def all_of(*coros: Coro[T]) -> list[T]:
    """Run ``coros`` together: their results, in order. The first to
    fail cancels the others (awaited before this returns) and its exception is raised as is."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(coro) for coro in coros]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]


C = TypeVar("C", bound=Closable)


async def started(resource: C, start: Callable[[], Awaitable[object]]) -> C:
    """``resource`` once ``start()`` returned. A start that fails half way (a socket open, some
    tasks running) closes the resource (``aclose``) before its error is raised again."""
    try:
        await start()
    except BaseException:
        await resource.aclose()
        raise
    return resource
