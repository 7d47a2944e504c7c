"""The supervisor of ``voicedock serve --workers N`` with worker processes of its own
(``fake_worker.py``): a crashed worker is started again with the others untouched, a worker that
exits 0 is not, the first ``SIGTERM`` orders every worker to drain and waits for all, a second
one (or ``SIGINT``) orders them to stop, one more kills them; a worker whose supervisor is gone
drains; an SQLite database runs one worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from process_helpers import alive
from voicedock.cli import EXIT_CONFIG, main
from voicedock.workers.orders import OrdersPipe, follow_orders
from voicedock.workers.signals import StopSignals
from voicedock.workers.supervisor import WorkerSupervisor, worker_command

pytestmark = pytest.mark.unit

FAKE = Path(__file__).with_name("fake_worker.py")


def supervisor(tmp_path: Path, behaviours: dict[int, str]) -> WorkerSupervisor:
    """Workers 1..N behaving as ``behaviours`` says, restarted after 50 ms."""

    def command(k: int, fd: int) -> list[str]:
        serving = [str(FAKE), str(tmp_path), behaviours[k]]
        return worker_command(serving, len(behaviours))(k, fd)

    return WorkerSupervisor(len(behaviours), command, restart_first=0.05, restart_cap=0.2)


def lines(tmp_path: Path, k: int) -> list[tuple[int, str]]:
    """What worker ``k`` wrote: (pid, what) in order, every run of it."""
    log = tmp_path / f"w{k}.log"
    found = log.read_text().splitlines() if log.exists() else []
    return [(int(pid), what) for pid, what in (line.split(" ", 1) for line in found)]


async def until(check: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not check():
            await asyncio.sleep(0.02)


async def running(
    sup: WorkerSupervisor, signals: StopSignals, then: Callable[[], Awaitable[None]]
) -> int:
    """``sup`` supervising until its workers are done while ``then`` acts; its exit status."""
    async with asyncio.TaskGroup() as group:
        supervised = group.create_task(sup.supervise(signals))
        await then()
    return supervised.result()


async def test_a_crashed_worker_is_started_again_and_the_others_are_untouched(
    tmp_path: Path,
) -> None:
    sup = supervisor(tmp_path, {1: "crashes-once", 2: "obeys"})
    signals = StopSignals()

    async def then() -> None:
        await until(lambda: sup.starts.get(1) == 2 and len(sup.pids) == 2)
        first_of_two = sup.pids[2]
        await asyncio.sleep(0.3)  # it stays up: no backoff, no restart
        assert sup.pids[2] == first_of_two
        assert sup.starts == {1: 2, 2: 1}
        signals.terminate()

    assert await running(sup, signals, then) == 0
    first, second = [pid for pid, what in lines(tmp_path, 1) if what == "started"]
    assert first != second
    assert [what for _, what in lines(tmp_path, 2)] == ["started", "drain"]


async def test_the_first_sigterm_drains_every_worker_and_waits_for_all(tmp_path: Path) -> None:
    """Each worker is ordered to drain once; the supervisor returns only when the last one
    (holding calls) has exited, and starts none again: exit 0 is done."""
    sup = supervisor(tmp_path, {1: "obeys", 2: "holds-calls"})
    signals = StopSignals()

    async def then() -> None:
        await until(lambda: len(sup.pids) == 2)
        signals.terminate()
        await until(lambda: list(sup.pids) == [2])  # 1 drained and exited; 2 holds calls
        await asyncio.sleep(0.3)
        assert list(sup.pids) == [2]
        assert sup.starts == {1: 1, 2: 1}
        signals.terminate()  # a second SIGTERM: stop at once

    assert await running(sup, signals, then) == 0
    assert [what for _, what in lines(tmp_path, 1)] == ["started", "drain"]
    assert [what for _, what in lines(tmp_path, 2)] == ["started", "drain", "stop"]


async def test_sigint_stops_every_worker_and_one_more_signal_kills_them(tmp_path: Path) -> None:
    sup = supervisor(tmp_path, {1: "deaf", 2: "deaf"})
    signals = StopSignals()

    async def then() -> None:
        await until(lambda: len(sup.pids) == 2)
        pids = sup.pids
        signals.interrupt()
        await until(lambda: all(len(lines(tmp_path, k)) == 2 for k in (1, 2)))
        await asyncio.sleep(0.2)
        assert sup.pids == pids  # deaf: still stopping
        signals.interrupt()

    assert await running(sup, signals, then) == 1  # killed
    for k in (1, 2):
        assert [what for _, what in lines(tmp_path, k)] == ["started", "stop"]


async def test_a_worker_that_exits_0_is_done_and_the_supervisor_with_it(tmp_path: Path) -> None:
    """``voicedock nodes drain`` drained both workers: the supervisor starts neither again."""
    sup = supervisor(tmp_path, {1: "done", 2: "done"})
    async with asyncio.timeout(10):
        assert await sup.supervise(StopSignals()) == 0
    assert sup.starts == {1: 1, 2: 1}


async def test_a_worker_crashing_while_the_machine_drains_is_started_again_to_drain(
    tmp_path: Path,
) -> None:
    """Its calls take the restart path of its node id, then finish: it is told to drain at once."""
    sup = supervisor(tmp_path, {1: "crashes-on-drain", 2: "holds-calls"})
    signals = StopSignals()

    async def then() -> None:
        await until(lambda: len(sup.pids) == 2)
        signals.terminate()
        await until(lambda: [w for _, w in lines(tmp_path, 1)] == ["started", "drain"] * 2)
        assert sup.starts[1] == 2
        signals.terminate()

    assert await running(sup, signals, then) == 0


async def test_a_worker_whose_supervisor_is_gone_drains() -> None:
    """The supervisor's end of the pipe closes with its process (``kill -9`` too): the worker
    reads the end and drains, as a first ``SIGTERM`` would."""
    pipe = OrdersPipe()
    signals = StopSignals()
    fd = os.dup(pipe.worker_fd)
    pipe.send("drain")
    pipe.close()
    async with asyncio.timeout(5):
        await follow_orders(fd, signals)
    assert signals.drain.is_set()
    assert not signals.stop.is_set()
    assert signals.why == "the supervisor's SIGTERM"  # the first order is what asked

    ended = OrdersPipe()
    alone = StopSignals()
    fd = os.dup(ended.worker_fd)
    ended.close()
    async with asyncio.timeout(5):
        await follow_orders(fd, alone)
    assert alone.drain.is_set()
    assert alone.why == "its supervisor is gone"


async def test_a_stop_order_stops_the_worker() -> None:
    pipe = OrdersPipe()
    signals = StopSignals()
    fd = os.dup(pipe.worker_fd)
    pipe.handed()
    task = asyncio.create_task(follow_orders(fd, signals))
    pipe.send("stop")
    async with asyncio.timeout(5):
        await signals.stop.wait()
    assert not signals.drain.is_set()
    pipe.close()
    await task


def test_a_killed_supervisors_workers_drain_and_exit(tmp_path: Path) -> None:
    """The supervisor as a process of its own, ``kill -9``: no worker is left behind."""
    script = (
        "import asyncio, sys\n"
        "sys.path[:0] = [sys.argv[1], sys.argv[1] + '/..']\n"
        "from test_supervisor import supervisor\n"
        "from pathlib import Path\n"
        "sup = supervisor(Path(sys.argv[2]), {1: 'holds-calls', 2: 'holds-calls'})\n"
        "asyncio.run(sup.run())\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script, str(Path(__file__).parent), tmp_path])
    try:
        deadline = time.monotonic() + 20
        while not all(lines(tmp_path, k) for k in (1, 2)):
            assert time.monotonic() < deadline
            assert process.poll() is None
            time.sleep(0.05)
        workers = [lines(tmp_path, k)[0][0] for k in (1, 2)]
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "a worker outlived its supervisor"
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    for k in (1, 2):
        assert [what for _, what in lines(tmp_path, k)] == ["started", "gone"]


def test_sqlite_runs_one_worker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "voicedock.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "db.sqlite"}"\n[pbx]\nkind = "none"\n'
    )
    assert main(["serve", "--workers", "2", "--config", str(config)]) == EXIT_CONFIG
    assert capsys.readouterr().err.strip() == (
        "voicedock: config: database.url: an SQLite database serves one voicedock node: "
        "2 workers need PostgreSQL (or run one: --workers 1)"
    )
    config.write_text(config.read_text() + "[node]\nworkers = 3\n")
    assert main(["serve", "--config", str(config)]) == EXIT_CONFIG
    assert "3 workers need PostgreSQL" in capsys.readouterr().err
    assert main(["doctor", "--config", str(config)]) == EXIT_CONFIG  # says so before a start
    assert "database.url: an SQLite database serves one" in capsys.readouterr().out
