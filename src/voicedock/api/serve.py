"""How ``voicedock serve`` runs: the web app on its address, and the node's life under the
process's signals.

* ``SIGTERM`` (a package upgrade, ``systemctl restart``, a Kubernetes rollout): the node drains
  (``calls/nodes/drain.py``: no new call, its calls finish) while the API goes on serving, and
  the process exits once the node holds no call, or ``[node] drain_timeout_seconds`` passed;
* a second ``SIGTERM``, or ``SIGINT`` (Ctrl-C): it stops at once, during a drain too, as a stop
  always did (the calls still up are hung up, ``end_reason`` ``shutdown``);
* ``voicedock nodes drain``: the same drain, asked through the database; the process exits
  when it is over.

A ``SIGINT`` (or a second ``SIGTERM``) while the service starts stops the start; one ``SIGTERM``
then drains as soon as the service is up (calls resumed at start-up finish first).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Callable, Iterator

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_log import AccessLogger

from voicedock.aio import first_of
from voicedock.api.app_keys import SERVICE
from voicedock.service import Service


class StopSignals:
    """What the process was told: ``drain`` (a first ``SIGTERM``), ``stop`` (a second one, or
    ``SIGINT``)."""

    def __init__(self) -> None:
        self.drain = asyncio.Event()
        self.stop = asyncio.Event()
        self._terms = 0

    def terminate(self) -> None:
        """A ``SIGTERM``: the first drains, the next stops."""
        self._terms += 1
        (self.drain if self._terms == 1 else self.stop).set()

    def interrupt(self) -> None:
        """A ``SIGINT``: stop."""
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


async def serve(
    app: web.Application,
    *,
    host: str,
    port: int,
    ready: Callable[[], None] = lambda: None,
    access_log_class: type[AbstractAccessLogger] = AccessLogger,
) -> None:
    """Serve ``app`` (which opens the service) on ``host``:``port`` until the process is told
    to stop or its node has drained; then close it. ``ready``: called once the API serves."""
    runner = web.AppRunner(app, access_log_class=access_log_class)
    with StopSignals().installed(asyncio.get_running_loop()) as signals:
        try:
            started = await first_of(signals.stop.wait(), runner.setup())
            if started is not None and started[0] == 0:
                return  # stopped while starting
            await web.TCPSite(runner, host, port).start()
            ready()
            service = app[SERVICE]
            drained = service.drain.finished
            await first_of(signals.stop.wait(), _drain_when_told(service, signals), drained.wait())
        finally:
            await runner.cleanup()


async def _drain_when_told(service: Service, signals: StopSignals) -> None:
    await signals.drain.wait()
    service.drain.request("SIGTERM")
    await service.drain.finished.wait()


def run(
    app: web.Application,
    *,
    host: str,
    port: int,
    loop: asyncio.AbstractEventLoop | None = None,
    ready: Callable[[], None] = lambda: None,
    access_log_class: type[AbstractAccessLogger] = AccessLogger,
) -> None:
    """``serve`` on ``loop`` (a new asyncio loop by default) until it returns, then close the
    loop (what is still running on it is cancelled first)."""
    loop = loop or asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(
            serve(app, host=host, port=port, ready=ready, access_log_class=access_log_class)
        )
    finally:
        try:
            _cancel_left(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            # What is left goes with the process: the interpreter's last collection need not
            # walk it (a drained node exits in a fraction of the time: a second less with
            # the offline voices loaded).
            gc.freeze()


def _cancel_left(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is still running on ``loop`` and wait for it (nothing should be)."""
    left = asyncio.all_tasks(loop)
    for task in left:
        task.cancel()
    if left:
        loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))


__all__ = ["StopSignals", "run", "serve"]
