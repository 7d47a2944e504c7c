"""The supervisor of ``voicedock serve --workers N``: N worker processes, each a node of its
own (``config/workers.py``), kept running until the machine is drained or stopped.

* A worker that **exits 0** is done and not started again: it drained (``SIGTERM`` to the
  worker, ``voicedock nodes drain --node <id>-w<k>``) or was stopped. The supervisor exits
  once every worker is done.
* A worker that **crashes** (any other exit, a signal, ``kill -9``) is started again under
  the same node id after a backoff (1 s doubling to 30 s, from 1 s again once a worker has
  run a minute), the others untouched: its calls take the restart path of its node id
  (resumed with ``[calls] resume_after_restart``, or ended ``service-restart``;
  docs/nodes.md). A worker that crashes while the machine drains is started again too, and
  told to drain at once: its calls are resumed (or ended) and then finish.
* The first ``SIGTERM`` drains the machine: each worker is ordered to drain (``orders.py``)
  and the supervisor waits for all; a second ``SIGTERM`` or a ``SIGINT`` orders each to stop at
  once, and one more signal kills the workers still stopping (``SIGKILL``).
* No worker outlives the supervisor for long: each follows the pipe of its orders, and when
  the supervisor is gone (a crash, ``kill -9``) the pipe ends and the worker drains.

The supervisor serves nothing itself: every worker listens on the API port (``SO_REUSEPORT``)
and on its own (``api/serve.py``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from voicedock.aio import first_of
from voicedock.backoff import Backoff
from voicedock.config import Settings
from voicedock.config.workers import check_workers, own_port, worker_node_id
from voicedock.errors import ConfigError
from voicedock.workers.orders import Order, OrdersPipe
from voicedock.workers.signals import StopSignals

log = logging.getLogger("voicedock.workers")

RESTART_FIRST_S = 1.0
RESTART_CAP_S = 30.0
STEADY_S = 60.0  # a worker up this long starts its restarts' backoff over

# The command line of worker ``k`` whose orders come on fd ``fd``.
WorkerCommand = Callable[[int, int], Sequence[str]]


@dataclass
class RunningWorker:
    index: int
    process: asyncio.subprocess.Process
    orders: OrdersPipe


class WorkerSupervisor:
    def __init__(
        self,
        count: int,
        command: WorkerCommand,
        *,
        name: Callable[[int], str] = lambda k: f"worker {k}",
        restart_first: float = RESTART_FIRST_S,
        restart_cap: float = RESTART_CAP_S,
        steady: float = STEADY_S,
    ) -> None:
        """``command(k, fd)``: worker ``k``'s command line (1 to ``count``), its orders on
        ``fd``; ``name(k)``: how the log names it (its node id)."""
        self.count = count
        self._command = command
        self._name = name
        self._restart_first = restart_first
        self._restart_cap = restart_cap
        self._steady = steady
        self._running: dict[int, RunningWorker] = {}
        self._draining = False
        self._stopping = asyncio.Event()
        self._killed = False
        self.starts: dict[int, int] = {}  # worker: how many times it was started

    @property
    def pids(self) -> dict[int, int]:
        """The running workers' process ids."""
        return {k: w.process.pid for k, w in self._running.items()}

    async def run(self) -> int:
        """Until every worker is done, under the process's signals: 0, or 1 when workers
        had to be killed."""
        with StopSignals().installed(asyncio.get_running_loop()) as signals:
            return await self.supervise(signals)

    async def supervise(self, signals: StopSignals) -> int:
        """``run`` told by ``signals`` (a test's own)."""
        async with asyncio.TaskGroup() as group:
            keepers = [group.create_task(self._keep(k)) for k in range(1, self.count + 1)]
            heard = group.create_task(self._hear(signals))
            await asyncio.wait(keepers)
            heard.cancel()
        return 1 if self._killed else 0

    async def _hear(self, signals: StopSignals) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._when(signals.drain, self.drain))
            group.create_task(self._when(signals.stop, self.stop))
            group.create_task(self._when(signals.kill, self.kill))

    @staticmethod
    async def _when(event: asyncio.Event, then: Callable[[], None]) -> None:
        await event.wait()
        then()

    def drain(self) -> None:
        """Every worker drains; the supervisor exits once all have."""
        if self._draining:
            return
        self._draining = True
        log.warning("the machine drains: each of its %d workers takes no new call", self.count)
        self._order("drain")

    def stop(self) -> None:
        """Every worker stops at once; none is started again."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        log.warning("the machine stops: each of its workers stops at once")
        self._order("stop")

    def kill(self) -> None:
        """The workers still stopping are killed."""
        self._killed = True
        for worker in self._running.values():
            log.warning("%s (pid %d) killed", self._name(worker.index), worker.process.pid)
            worker.process.kill()

    def _order(self, order: Order) -> None:
        for worker in self._running.values():
            worker.orders.send(order)

    async def _keep(self, k: int) -> None:
        """Worker ``k``: started, and started again after each crash, until it is done."""
        loop = asyncio.get_running_loop()
        backoff = Backoff(self._restart_first, self._restart_cap, jitter=0.25)
        while not self._stopping.is_set():
            began = loop.time()
            code = await self._once(k)
            if code == 0 or self._stopping.is_set():
                return
            if loop.time() - began >= self._steady:
                backoff.reset()
            delay = backoff.next_delay()
            log.warning(
                "%s %s: starting it again in %.1f s (its calls take the restart path of its "
                "node id)",
                self._name(k),
                _how_it_ended(code),
                delay,
            )
            await first_of(self._stopping.wait(), within=delay)

    async def _once(self, k: int) -> int:
        """Worker ``k`` started once and waited for: its exit status."""
        orders = OrdersPipe()
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command(k, orders.worker_fd), pass_fds=(orders.worker_fd,)
            )
        except OSError as exc:
            orders.close()
            log.warning("%s not started: %s", self._name(k), exc)
            return 127
        orders.handed()
        self.starts[k] = self.starts.get(k, 0) + 1
        self._running[k] = RunningWorker(k, process, orders)
        log.info("%s started (pid %d)", self._name(k), process.pid)
        if self._stopping.is_set():
            orders.send("stop")
        elif self._draining:
            orders.send("drain")
        try:
            code = await process.wait()
        finally:  # cancelled too: the worker reads the end of its orders and drains
            del self._running[k]
            orders.close()
        if code == 0:
            log.info("%s (pid %d) exited", self._name(k), process.pid)
        return code


def worker_command(serving: Sequence[str], count: int) -> WorkerCommand:
    """Worker ``k``'s command line: ``python <serving...> --worker k/N --orders-fd FD``
    (``serving``: what runs ``voicedock serve``'s worker, e.g. ``-m voicedock.cli serve
    --config FILE``; the environment is inherited)."""

    def command(k: int, fd: int) -> list[str]:
        return [sys.executable, *serving, "--worker", f"{k}/{count}", "--orders-fd", str(fd)]

    return command


def _how_it_ended(code: int) -> str:
    if code < 0:
        try:
            return f"was killed ({signal.Signals(-code).name})"
        except ValueError:
            return f"was killed (signal {-code})"
    return f"exited with status {code}"


def supervise(settings: Settings, count: int, command: WorkerCommand) -> int:
    """Run ``count`` workers of the machine ``settings`` configure until they are done (the
    module says how); ``ConfigError`` when the configuration cannot run them."""
    check_workers(settings, count)
    check_port_free(settings.server.host, settings.server.port)
    base = settings.node.id
    port = settings.server.port
    print(
        f"voicedock: {count} workers on http://{settings.server.host}:{port}: nodes "
        f"{worker_node_id(base, 1)} to {worker_node_id(base, count)}, their own ports "
        f"{own_port(port, 1)} to {own_port(port, count)}",
        flush=True,
    )
    supervisor = WorkerSupervisor(count, command, name=lambda k: worker_node_id(base, k))
    return asyncio.run(supervisor.run())


def check_port_free(host: str, port: int) -> None:
    """``ConfigError`` when another program holds the API port (the workers share it with
    ``SO_REUSEPORT``, which only this user's sockets that set it too may)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError("server.port", f"{host}:{port} is not free: {exc}") from None


__all__ = [
    "RunningWorker",
    "WorkerCommand",
    "WorkerSupervisor",
    "check_port_free",
    "supervise",
    "worker_command",
]
