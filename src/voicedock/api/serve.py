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

A worker of ``voicedock serve --workers N`` (``workers/``) serves the same way, on the
machine's API port that every worker listens on and on its own port (``config/workers.py``),
and its supervisor's orders (``workers/orders.py``) ask what these signals ask.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from voicedock.aio import Supervisor, first_of
from voicedock.api.access_log import AccessLog
from voicedock.api.app_keys import SERVICE
from voicedock.api.machine import MACHINE, Machine
from voicedock.config.workers import WorkerPlace
from voicedock.service import Service
from voicedock.workers.orders import follow_orders
from voicedock.workers.signals import StopSignals

log = logging.getLogger("voicedock.api")


@dataclass(frozen=True)
class Worker:
    """This process is worker ``place`` of ``voicedock serve --workers N``, its supervisor's
    orders on ``orders_fd`` (``workers/orders.py``)."""

    place: WorkerPlace
    orders_fd: int


async def serve(
    app: web.Application,
    *,
    host: str,
    port: int,
    ready: Callable[[], None] = lambda: None,
    worker: Worker | None = None,
) -> None:
    """Serve ``app`` (which opens the service) on ``host``:``port`` until the process is told
    to stop or its node has drained; then close it. ``ready``: called once the API serves.
    Each request is logged by ``AccessLog`` (``access_log.py``: no phone number whole).
    A ``worker`` shares ``port`` with the machine's other workers (``SO_REUSEPORT``), serves
    on its own port too, and follows its supervisor's orders as it would its signals."""
    if worker is not None:  # before the app is frozen: its routes reach the other workers
        machine = app[MACHINE] = Machine(worker.place)
        app.on_cleanup.append(lambda _app: machine.aclose())
    runner = web.AppRunner(app, access_log_class=AccessLog)
    with StopSignals().installed(asyncio.get_running_loop()) as signals:
        async with Supervisor("serve", log) as tasks:
            if worker is not None:
                tasks.spawn(follow_orders(worker.orders_fd, signals), name="orders")
            try:
                started = await first_of(signals.stop.wait(), runner.setup())
                if started is not None and started[0] == 0:
                    return  # stopped while starting
                for site in _sites(runner, host, port, worker):
                    await site.start()
                ready()
                service = app[SERVICE]
                drained = service.drain.finished
                await first_of(
                    signals.stop.wait(), _drain_when_told(service, signals), drained.wait()
                )
            finally:
                await runner.cleanup()


def _sites(runner: web.AppRunner, host: str, port: int, worker: Worker | None) -> list[web.TCPSite]:
    """Where the app listens: ``host``:``port``; a worker shares it and has its own port."""
    if worker is None:
        return [web.TCPSite(runner, host, port)]
    return [
        web.TCPSite(runner, host, port, reuse_port=True),
        web.TCPSite(runner, host, worker.place.own_port),
    ]


async def _drain_when_told(service: Service, signals: StopSignals) -> None:
    await signals.drain.wait()
    service.drain.request(signals.why)
    await service.drain.finished.wait()


def run(
    app: web.Application,
    *,
    host: str,
    port: int,
    loop: asyncio.AbstractEventLoop | None = None,
    ready: Callable[[], None] = lambda: None,
    worker: Worker | None = None,
) -> None:
    """``serve`` on ``loop`` (a new asyncio loop by default) until it returns, then close the
    loop (what is still running on it is cancelled first)."""
    loop = loop or asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(
            serve(
                app,
                host=host,
                port=port,
                ready=ready,
                worker=worker,
            )
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


__all__ = ["StopSignals", "Worker", "run", "serve"]
