"""The pipe from the supervisor to one worker: the supervisor's orders, one line each.

``drain`` (the supervisor's first ``SIGTERM``): the worker drains as its own ``SIGTERM`` would
have it; ``stop`` (a second ``SIGTERM``, or ``SIGINT``): it stops at once. The worker inherits
the pipe's read end (its fd is given as ``voicedock serve --orders-fd``); the supervisor keeps
the write end. When the supervisor is gone (killed, ``kill -9`` too), the kernel closes that end
and the worker reads the pipe's end: it drains, so that its calls finish and no worker
outlives its supervisor for longer than its calls (``[node] drain_timeout_seconds`` at most).

Orders, not signals: a service manager that signals the whole process group (systemd's
default ``KillMode=control-group``) already gave each worker its own ``SIGTERM``; the same
drain ordered once more changes nothing, where a second forwarded ``SIGTERM`` would stop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Literal

from voicedock.workers.signals import StopSignals

log = logging.getLogger("voicedock.workers")

Order = Literal["drain", "stop"]


class OrdersPipe:
    """The supervisor's end of one worker's orders. ``worker_fd`` goes to the worker (its
    ``pass_fds``) and is closed here once the worker started (``handed``)."""

    def __init__(self) -> None:
        self.worker_fd, self._fd = os.pipe()
        os.set_blocking(self._fd, False)  # a worker that stopped reading never blocks this
        self._handed = False
        self._closed = False

    def handed(self) -> None:
        """The worker has its end (or was not started): ours of it goes."""
        if not self._handed:
            self._handed = True
            os.close(self.worker_fd)

    def send(self, order: Order) -> None:
        """Tell the worker; nothing when it is gone (it stopped reading, or exited)."""
        if self._closed:
            return
        with contextlib.suppress(OSError):  # BrokenPipeError: gone; BlockingIOError: full
            os.write(self._fd, f"{order}\n".encode())

    def close(self) -> None:
        self.handed()
        if not self._closed:
            self._closed = True
            os.close(self._fd)


async def follow_orders(fd: int, signals: StopSignals) -> None:
    """The worker's end: each order sets what its signal would (``drain``, ``stop``); the end
    of the pipe (the supervisor is gone) drains. Returns then; cancelled with the server."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    pipe = os.fdopen(fd, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        while line := await reader.readline():
            order = line.strip().decode(errors="replace")
            if order == "drain":
                signals.drain_for("the supervisor's SIGTERM")
            elif order == "stop":
                signals.stop.set()
            else:
                log.warning("an order from the supervisor not understood: %r", order[:40])
        log.warning("the supervisor is gone: this worker drains (its calls finish, then it exits)")
        signals.drain_for("its supervisor is gone")
    finally:
        transport.close()


__all__ = ["Order", "OrdersPipe", "follow_orders"]
