"""What the process's signals ask of ``voicedock serve``, a node's and the supervisor's alike:

* the first ``SIGTERM`` drains (a node: no new call, its calls finish, then it exits; the
  supervisor: every worker does);
* a second ``SIGTERM``, or ``SIGINT`` (Ctrl-C), stops at once;
* one more after that (the supervisor's workers still stopping): ``kill``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator


class StopSignals:
    """What the process was told: ``drain`` (a first ``SIGTERM``), ``stop`` (a second one, or
    ``SIGINT``), ``kill`` (a signal once stopping)."""

    def __init__(self) -> None:
        self.drain = asyncio.Event()
        self.stop = asyncio.Event()
        self.kill = asyncio.Event()
        self.why = "SIGTERM"  # what asked for the drain, for the log
        self._terms = 0

    def drain_for(self, why: str) -> None:
        """A drain another way (the supervisor's order), as a first ``SIGTERM`` would."""
        if not self.drain.is_set():
            self.why = why
            self.drain.set()

    def terminate(self) -> None:
        """A ``SIGTERM``: the first drains, the next stops, one more kills."""
        self._terms += 1
        if self._terms == 1:
            self.drain.set()
        else:
            self._stop()

    def interrupt(self) -> None:
        """A ``SIGINT``: stop (kill when already stopping)."""
        self._stop()

    def _stop(self) -> None:
        if self.stop.is_set():
            self.kill.set()
        self.stop.set()

    @contextlib.contextmanager
    def installed(self, loop: asyncio.AbstractEventLoop) -> Iterator[StopSignals]:
        """Heard from the process's signals while the block runs (then their default again)."""
        handlers = {signal.SIGTERM: self.terminate, signal.SIGINT: self.interrupt}
        for signum, handler in handlers.items():
            loop.add_signal_handler(signum, handler)
        try:
            yield self
        finally:
            for signum in handlers:
                loop.remove_signal_handler(signum)


__all__ = ["StopSignals"]
