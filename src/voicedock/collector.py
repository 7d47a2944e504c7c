"""``garbage_collector``: Python's cyclic garbage collector set for a node's many calls.

Once the service is open, ``voicedock serve``:

* **freezes what start-up loaded** (``gc.freeze()``): modules, settings, the service; they live
  as long as the process, and no collection walks them again;
* **spaces the collections** (``server.gc_thresholds``): a full collection walks every object
  the calls hold and stops every call while it does (100 ms and more at a few hundred calls
  with Python's own thresholds);
* **collects the oldest generation at least every** ``server.gc_full_every_seconds``. Spaced
  collections let the garbage wait: an ended call's objects that reference cycles keep (its
  asyncio transports and tasks, asyncpg's expired statements, its records, its events) reach
  the oldest generation while the call runs, and only a full collection frees them. The
  thresholds count container objects *alive*, and a node's calls free nearly all they make, so
  at 100 steady calls the thresholds called for no full collection in 28 minutes while the
  node's memory rose by its waiting garbage, about 0.4 MiB a minute
  (``bench/results/soak-2026-11-26-memory.md``). A full collection at a fixed interval bounds
  that garbage by what the calls leave in one interval; a full one the thresholds ran in the
  meantime counts.

``docs/performance/sizing.md`` ("Garbage collection", "Memory per call") has the measurements.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from voicedock.aio import Supervisor

log = logging.getLogger("voicedock.collector")

OLDEST = 2  # gc's oldest generation


def full_collections() -> int:
    """Full collections run in this process so far, by whoever ran them."""
    return int(gc.get_stats()[OLDEST]["collections"])


async def collect_every(interval: float, *, collect: Callable[[], object] = gc.collect) -> None:
    """Run a full collection whenever ``interval`` seconds passed without one (forever)."""
    seen = full_collections()
    while True:
        await asyncio.sleep(interval)
        if full_collections() != seen:  # the thresholds ran one within the interval
            seen = full_collections()
            continue
        started = time.perf_counter()
        freed = collect()
        seen = full_collections()
        log.debug(
            "full collection: %s objects freed in %.1f ms",
            freed,
            (time.perf_counter() - started) * 1000,
        )


def garbage_collector(
    thresholds: tuple[int, int, int], full_every_seconds: float
) -> Callable[[object], AbstractAsyncContextManager[None]]:
    """The policy (module docstring) for ``app.cleanup_ctx``, after the service's: start-up's
    objects frozen, ``thresholds`` set, and while the app runs a full collection at least every
    ``full_every_seconds`` (0: only when the thresholds say)."""

    @asynccontextmanager
    async def policy(_app: object) -> AsyncIterator[None]:
        gc.collect()
        gc.freeze()
        gc.set_threshold(*thresholds)
        async with Supervisor("garbage collector", log) as tasks:
            if full_every_seconds > 0:
                tasks.spawn(collect_every(full_every_seconds), name="full-collections")
            yield

    return policy


__all__ = ["collect_every", "full_collections", "garbage_collector"]
