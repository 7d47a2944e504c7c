"""The calls this node serves: each answered (or resumed) call's ``RunningCall`` and its task,
from the answer to its stored record, under one supervisor. One call's failure never reaches
another call's task (a call's task never fails: its failure is its record's end reason). At
shutdown every call is stopped (hung up, its record stored) before the supervisor closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine

from voicedock.aio import Supervisor
from voicedock.calls.runner.presynthesis import Presynthesis
from voicedock.calls.runner.running_call import RunningCall

log = logging.getLogger("voicedock.calls")


class ServedCalls:
    def __init__(self, presynthesis: Presynthesis | None = None) -> None:
        self._presynthesis = presynthesis
        self._calls: dict[str, RunningCall] = {}
        # The calls' tasks and what they start (a tool's transfer).
        self._tasks = Supervisor("call runner", log)
        self._closed = False

    @property
    def started(self) -> bool:
        """Started, and not closing."""
        return self._tasks.running and not self._closed

    @property
    def closing(self) -> bool:
        return self._closed

    def get(self, call_id: str) -> RunningCall | None:
        return self._calls.get(call_id)

    def __contains__(self, call_id: str) -> bool:
        return call_id in self._calls

    def every(self) -> list[RunningCall]:
        return list(self._calls.values())

    def serve(self, running: RunningCall, work: Coroutine[object, object, None]) -> None:
        """Serve ``running`` with ``work``, in a task of its own; when it is over the call is
        no longer served, and what was prepared for it ahead is released."""
        self._calls[running.call_id] = running
        running.run_in(self._tasks, self._served(running.call_id, work))
        if running.task is None:  # closed meanwhile: nothing runs
            work.close()
            self._calls.pop(running.call_id, None)

    def spawn(self, work: Coroutine[object, object, None]) -> None:
        """Run ``work`` for a served call (a tool's transfer) beside its task."""
        self._tasks.spawn(work)

    async def _served(self, call_id: str, work: Coroutine[object, object, None]) -> None:
        try:
            await work
        finally:
            self._calls.pop(call_id, None)
            if self._presynthesis is not None:
                self._presynthesis.drop(call_id)

    async def start(self) -> None:
        await self._tasks.start()

    async def stop(self, reason: str, grace: float) -> None:
        """Stop every call (``reason``) and give their tasks ``grace`` seconds to store their
        records; the late ones are cancelled (idempotent)."""
        self._closed = True
        running = list(self._calls.values())
        for call in running:
            call.stop(reason)
        tasks = [c.task for c in running if c.task is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()

    async def aclose(self) -> None:
        """Wait for what the calls still do (the late calls' wind-down), then close."""
        try:
            await self._tasks.drain()
        finally:
            await self._tasks.aclose()
