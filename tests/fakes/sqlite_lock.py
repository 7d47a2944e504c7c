"""Another process holds a SQLite file's write lock: the store is unavailable meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

_HOLD_LOCK = (
    "import sqlite3, sys, time\n"
    "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "conn.execute('BEGIN EXCLUSIVE')\n"
    "print('locked', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
    "conn.execute('COMMIT')\n"
)


@contextlib.asynccontextmanager
async def exclusive_lock(database: Path | str, seconds: float) -> AsyncIterator[asyncio.Task[int]]:
    """A separate process keeps ``BEGIN EXCLUSIVE`` on ``database`` for ``seconds`` (entered
    once it holds the lock); yields the task of its exit, which releases it. Killed on exit."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD_LOCK, str(database), str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    released = asyncio.ensure_future(proc.wait())
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(10):
            assert (await proc.stdout.readline()).strip() == b"locked"
        yield released
    finally:
        if proc.returncode is None:
            proc.kill()
        await released
