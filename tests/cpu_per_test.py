"""Where the suite's CPU goes, per test: a pytest plugin for measuring the suite, off by default.

``-p cpu_per_test`` with ``VOICEDOCK_CPU_PER_TEST=<directory>`` writes one JSON line per test
(setup, call and teardown together) to ``<directory>/<pid>.jsonl`` of the process that ran it
(each xdist worker; the controller, which runs no test, writes nothing):

* ``wall``: seconds from the test's start to its end;
* ``self``: CPU seconds of the process running it, all its threads (the in-process service, its
  offline speech, the test itself);
* ``others``: CPU seconds of the processes it started (lab Asterisk and FreeSWITCH, node
  processes, schemathesis), those still running and those it reaped. A daemon that detaches
  (PostgreSQL's server) is not counted.

``wall`` beyond ``self + others`` is time the test waited: for audio in real time, for a
deadline, for the CPU. ``docs/testing.md`` ("Where the CPU goes") has a run's numbers.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import pytest

_DIRECTORY = os.environ.get("VOICEDOCK_CPU_PER_TEST", "")
_TICKS = os.sysconf("SC_CLK_TCK")
_started: dict[str, tuple[float, float, float]] = {}
_measured = [False]  # this process measures (``pytest_configure``)


def _descendants_cpu() -> float:
    """CPU seconds of every process below this one (``/proc``), their reaped children too."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # ended meanwhile
        fields = stat[stat.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
        cpu[int(entry)] = sum(int(f) for f in fields[11:15]) / _TICKS  # utime stime cutime cstime
    total, below = 0.0, list(children.get(os.getpid(), []))
    while below:
        pid = below.pop()
        total += cpu.get(pid, 0.0)
        below.extend(children.get(pid, []))
    return total


def _own_cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def _reaped_cpu() -> float:
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return reaped.ru_utime + reaped.ru_stime


def pytest_configure(config: pytest.Config) -> None:
    """On, and in a process that runs tests (an xdist worker, or a run without workers)."""
    runs_tests = hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", 0)
    _measured[0] = bool(_DIRECTORY) and runs_tests


def pytest_runtest_logstart(nodeid: str) -> None:
    if not _measured[0]:
        return
    _started[nodeid] = (time.monotonic(), _own_cpu(), _descendants_cpu() + _reaped_cpu())


@pytest.hookimpl(trylast=True)
def pytest_runtest_logfinish(nodeid: str) -> None:
    started = _started.pop(nodeid, None)
    if started is None:
        return
    wall, own, others = started
    row = {
        "test": nodeid,
        "wall": round(time.monotonic() - wall, 3),
        "self": round(_own_cpu() - own, 3),
        "others": round(_descendants_cpu() + _reaped_cpu() - others, 3),
    }
    Path(_DIRECTORY).mkdir(parents=True, exist_ok=True)
    with Path(_DIRECTORY, f"{os.getpid()}.jsonl").open("a") as out:
        out.write(json.dumps(row) + "\n")
