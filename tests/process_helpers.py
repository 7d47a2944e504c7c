"""A program a test runs as a process of its own (so that it can be killed like a real one)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def logged_process(
    args: Sequence[str], log: Path, *, env: Mapping[str, str], cwd: Path | str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``args`` as a subprocess, its output in ``log``; always stopped (SIGINT: a voicedock
    node stops at once, where SIGTERM would let its calls finish first; then SIGKILL)."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(args), env=dict(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
