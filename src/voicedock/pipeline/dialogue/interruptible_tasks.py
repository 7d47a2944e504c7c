"""The tasks that think or speak for the assistant on a call: a barge-in stops them.

Both engines spawn every such task here (a reply being thought or said, a ``say``, a filler,
a reply waiting to be played to its end), in the dialogue's supervisor, and stop them when
the caller takes the floor (``stop``) or the call ends. What was being said is then settled as
heard by the dialogue; the tasks are only stopped here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine

from voicedock.aio import Supervisor


class InterruptibleTasks:
    def __init__(self, tasks: Supervisor) -> None:
        self._tasks = tasks
        self._running: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[object, object, None]) -> asyncio.Task[None] | None:
        """A task a barge-in stops (None: the dialogue is closing)."""
        task = self._tasks.spawn(coro)
        if task is not None:
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return task

    def running(self) -> list[asyncio.Task[None]]:
        """What is thinking or speaking now (the task asking left out)."""
        current = asyncio.current_task()
        return [task for task in self._running if task is not current]

    async def stop(self, keep: Callable[[asyncio.Task[None]], bool] | None = None) -> None:
        """Cancel them (all but those to ``keep``) and wait until they are over."""
        tasks = [t for t in self._running if keep is None or not keep(t)]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
