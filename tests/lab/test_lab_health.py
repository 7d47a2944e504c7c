"""A lab Asterisk that stops answering is restarted before the next test (tests/lab_health.py):
an instance of its own, stopped with SIGSTOP, makes no channel within the probe's time, is
restarted on the same ports, and answers the probe again."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

import lab_session
from lab_health import restarted_if_stalled, stalled
from voicedock_lab.server import LabAsterisk
from voicedock_lab.settings import LabSettings

pytestmark = [pytest.mark.asterisk, pytest.mark.timeout(180)]


@pytest.fixture
def own_lab() -> Iterator[LabAsterisk]:
    settings = LabSettings(instance=f"pytest-health-{os.getpid()}")
    yield from lab_session._running_lab("lab Asterisk of its own", lab_session._blocker(), settings)


def test_a_lab_that_makes_no_channel_is_restarted_and_answers_again(own_lab: LabAsterisk) -> None:
    assert stalled(own_lab) is None
    assert restarted_if_stalled(own_lab) is None  # an answering lab is left alone
    pid = own_lab.status().pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        seen = restarted_if_stalled(own_lab)
    finally:
        with_pid = own_lab.status().pid
        if with_pid == pid:  # not restarted: let it go on
            os.kill(pid, signal.SIGCONT)
    assert seen is not None
    assert seen.startswith("ARI POST /channels/externalMedia: "), seen
    # What it had up: its CLI asked once (a stopped process answers nothing), not waited on
    # for each command.
    assert (
        "> core show channels concise\n(LabError: CLI 'core show channels concise' timed out"
        in seen
    )
    assert "> bridge show all\n(not asked)" in seen, seen
    assert own_lab.status().pid not in (None, pid)
    assert stalled(own_lab) is None
