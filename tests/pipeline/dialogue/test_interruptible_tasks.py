"""The assistant's interruptible tasks (``pipeline/dialogue/interruptible_tasks.py``): a
barge-in stops them, all or all but those it keeps, and waits until they are over."""

from __future__ import annotations

import asyncio
import logging

import pytest

from voicedock.aio import Supervisor
from voicedock.pipeline.dialogue.interruptible_tasks import InterruptibleTasks

pytestmark = pytest.mark.unit


async def test_stop_cancels_all_but_the_kept_and_waits_for_them() -> None:
    async with Supervisor("test", logging.getLogger("test")) as supervisor:
        speech = InterruptibleTasks(supervisor)
        reply = speech.spawn(asyncio.sleep(10))
        waiting_say = speech.spawn(asyncio.sleep(10))
        assert reply is not None
        assert waiting_say is not None
        assert set(speech.running()) == {reply, waiting_say}
        await speech.stop(lambda task: task is waiting_say)
        assert reply.cancelled()
        assert not waiting_say.done()
        assert speech.running() == [waiting_say]
        await speech.stop()
        assert waiting_say.cancelled()
        assert speech.running() == []


async def test_the_task_asking_is_not_among_the_running() -> None:
    async with Supervisor("test", logging.getLogger("test")) as supervisor:
        speech = InterruptibleTasks(supervisor)
        seen: list[int] = []

        async def ask() -> None:
            seen.append(len(speech.running()))

        other = speech.spawn(asyncio.sleep(10))
        asking = speech.spawn(ask())
        assert asking is not None
        await asyncio.wait([asking])
        assert seen == [1]  # only the other one
        assert other is not None
        other.cancel()
