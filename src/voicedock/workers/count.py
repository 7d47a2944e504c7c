"""How many workers ``voicedock serve`` runs: ``--workers N``, else ``[node] workers``, else
what suits the configuration:

* one on SQLite: an SQLite database serves one node (``config/workers.py`` refuses more);
* one with offline speech, the default (``[speech] stt`` Whisper or ``tts`` Piper): the
  models' own thread pools already take every core, and a second worker would load them
  again (docs/performance/sizing.md); the operator may say more;
* otherwise (cloud speech: a call costs the node about its media, 100 calls per core), one per
  core this process may use: its CPU affinity (``taskset``, a container's cpuset), at most
  a cgroup's CPU quota (a container's ``--cpus``) rounded up.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from voicedock.calls.offline_speech import uses_offline_speech
from voicedock.config import Settings

_CGROUP = Path("/sys/fs/cgroup")


def worker_count(settings: Settings, asked: int | None = None) -> int:
    """The workers to run (``asked``: ``--workers``; 0 or None: the configuration's)."""
    if asked:
        return asked
    if settings.node.workers:
        return settings.node.workers
    if settings.database.url.lower().startswith("sqlite"):
        return 1
    if uses_offline_speech(settings.speech):
        return 1
    return usable_cores()


def usable_cores() -> int:
    """The cores this process may run on (the module says how)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def cgroup_cpu_quota(root: Path = _CGROUP, own: Path = Path("/proc/self/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup (v2 ``cpu.max``: quota over period, the
    tightest of its own and its parents'), in cores; None without one."""
    try:
        line = next(x for x in own.read_text().splitlines() if x.startswith("0::"))
    except (OSError, StopIteration):
        return None
    group = root / line[3:].lstrip("/")
    quotas = []
    for directory in (group, *group.parents):
        if not directory.is_relative_to(root):
            break
        try:
            quota, period = (directory / "cpu.max").read_text().split()
            if quota != "max":
                quotas.append(int(quota) / int(period))
        except (OSError, ValueError):
            continue
    return min(quotas, default=None)


__all__ = ["cgroup_cpu_quota", "usable_cores", "worker_count"]
