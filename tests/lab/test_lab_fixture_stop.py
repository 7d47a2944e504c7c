"""The lab Asterisk fixtures (tests/lab_session.py) stop their instance at once at the end, even
when one of its channels never ends: on SIGTERM Asterisk waits up to 15 s for every channel to
be destroyed, and a worker's last lab test may leave one behind. The instance is thrown away:
it gets ``DISCARD_STOP_S`` to exit, then SIGKILL, and nothing of it runs afterwards."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

import lab_session
from lab_availability import DISCARD_STOP_S
from voicedock_lab.settings import LabSettings

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(60)]

# A channel that outlives a hang-up: System() waits for its command, hang-up or not.
STUCK_S = 8.0


def _running(argv: list[bytes]) -> list[int]:
    """The pids of the processes whose command line is ``argv``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().split(b"\0")[:-1] == argv:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_lab_with_a_channel_that_never_ends_stops_at_once() -> None:
    settings = LabSettings(instance=f"pytest-stop-{os.getpid()}")
    running = lab_session._running_lab("lab Asterisk of its own", lab_session._blocker(), settings)
    lab = next(running)
    # A duration of this test's own, to find the command Asterisk started (and end it).
    stuck = f"{STUCK_S + (os.getpid() % 1000) / 1000:.3f}"
    try:
        lab.cli("module load app_system.so")
        lab.cli(f'channel originate Local/s@lab-caller application System "sleep {stuck}"')
        deadline = time.monotonic() + 5
        while "!System!" not in lab.cli("core show channels concise"):
            assert time.monotonic() < deadline, "the channel never ran System()"
            time.sleep(0.05)
        pid = lab.status().pid
        assert pid is not None
        started = time.monotonic()
        with pytest.raises(StopIteration):
            next(running)  # the session's end
        took = time.monotonic() - started
    finally:
        running.close()
        for left in _running([b"sleep", stuck.encode()]):
            os.kill(left, signal.SIGKILL)
    assert took < DISCARD_STOP_S + 2.0, took  # not Asterisk's wait for the channel
    assert not Path(f"/proc/{pid}").exists()  # killed and reaped, not left running
    assert not lab.settings.instance_dir.exists()
