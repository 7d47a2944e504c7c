"""Another process holds a SQLite file's write lock: the store is unavailable meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

_HOLD_LOCK = (
    "import select, sqlite3, sys\n"
    "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "conn.execute('BEGIN EXCLUSIVE')\n"
    "print('locked', flush=True)\n"
    "select.select([sys.stdin], [], [], float(sys.argv[2]))\n"  # a line: released early
    "conn.execute('COMMIT')\n"
)


@contextlib.asynccontextmanager
async def exclusive_lock(
    database: Path | str, seconds: float, release: asyncio.Event | None = None
) -> AsyncIterator[asyncio.Task[int]]:
    """A separate process keeps ``BEGIN EXCLUSIVE`` on ``database`` for ``seconds``, or until
    ``release`` is set if sooner (entered once it holds the lock); yields the task of its exit,
    which releases it. Killed on exit."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD_LOCK, str(database), str(seconds),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    released = asyncio.ensure_future(proc.wait())

    async def released_when_told() -> None:
        assert release is not None
        assert proc.stdin is not None
        await release.wait()
        proc.stdin.write(b"release\n")
        await proc.stdin.drain()

    telling = None if release is None else asyncio.ensure_future(released_when_told())
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(10):
            assert (await proc.stdout.readline()).strip() == b"locked"
        yield released
    finally:
        if telling is not None:
            telling.cancel()
        if proc.returncode is None:
            proc.kill()
        await released
