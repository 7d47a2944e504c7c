"""The garbage collector's policy a node runs under (voicedock/collector.py)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator

import pytest
from aiohttp import web

from voicedock.collector import collect_every, full_collections, garbage_collector
from voicedock.config import ServerSettings

pytestmark = pytest.mark.unit


@pytest.fixture
def collector_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


async def test_a_served_app_freezes_start_up_spaces_collections_and_collects_fully_on_time(
    collector_restored: None,
) -> None:
    # As `voicedock serve` runs it: in the app's cleanup context, after the service's.
    server = ServerSettings()
    assert (server.gc_thresholds, server.gc_full_every_seconds) == ((2000, 10, 100), 600)
    app = web.Application()
    app.cleanup_ctx.append(garbage_collector((700, 10, 10), 0.05))
    runner = web.AppRunner(app)
    frozen = gc.get_freeze_count()
    await runner.setup()
    try:
        assert gc.get_freeze_count() > frozen
        assert gc.get_threshold() == (700, 10, 10)
        started = full_collections()
        await until(lambda: full_collections() - started >= 3)  # one about every 0.05 s
    finally:
        await runner.cleanup()
    stopped = full_collections()
    await asyncio.sleep(0.2)
    assert full_collections() == stopped  # the app closed: its collections stopped


async def test_no_extra_collection_while_the_thresholds_run_full_ones(
    collector_restored: None,
) -> None:
    gc.freeze()  # as in a node: the collections walk little
    extra = 0

    def counted() -> int:
        nonlocal extra
        extra += 1
        return gc.collect()

    async with asyncio.TaskGroup() as group:
        task = group.create_task(collect_every(0.1, collect=counted))
        for _ in range(12):  # a full collection every 0.05 s, as busy thresholds would run
            gc.collect()
            await asyncio.sleep(0.05)
        assert extra == 0
        await until(lambda: extra >= 2)  # none by anyone else: the policy's own come
        task.cancel()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_off_when_the_operator_says_zero(collector_restored: None) -> None:
    app = web.Application()
    app.cleanup_ctx.append(garbage_collector((2000, 10, 100), 0))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        started = full_collections()
        await asyncio.sleep(0.2)
        assert full_collections() == started
    finally:
        await runner.cleanup()
