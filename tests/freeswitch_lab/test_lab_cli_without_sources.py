"""``voicedock lab status`` and ``voicedock lab down --pbx freeswitch`` in a new shell, as
``scripts/run.sh --pbx freeswitch`` tells a user to stop the lab: without
``VOICEDOCK_FREESWITCH_SOURCES`` and with no ``../shared/freeswitch`` beside the project, they
find the running lab FreeSWITCH (started by ``voicedock lab up`` from its sources) and stop it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from voicedock_lab.config import find_project_root
from voicedock_lab.freeswitch import LabFreeswitch, remove_instance
from voicedock_lab.freeswitch_config import FreeswitchLabSettings

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.timeout(180)]

PROJECT = find_project_root(Path(__file__))
VOICEDOCK = str(PROJECT / ".venv" / "bin" / "voicedock")


def lab(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VOICEDOCK, "lab", *args, "--pbx", "freeswitch"],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_status_and_down_without_the_sources(freeswitch_lab: LabFreeswitch, tmp_path: Path) -> None:
    del freeswitch_lab  # only for its build (or its skip / CI failure when it cannot be built)
    instance = f"pytest-shell-{os.getpid()}"
    started = lab(
        "up", "--instance", instance, "--free-ports", "--no-utterances", env=dict(os.environ)
    )
    running = LabFreeswitch(FreeswitchLabSettings(instance=instance), verbose=False)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        running = running.saved_or_self()
        pid = running.status().pid
        assert pid is not None
        # A new shell: no sources configured, none beside the project.
        lonely = tmp_path / "elsewhere" / "voicedock"
        lonely.mkdir(parents=True)
        shell = {k: v for k, v in os.environ.items() if k != "VOICEDOCK_FREESWITCH_SOURCES"}
        shell["VOICEDOCK_PROJECT_DIR"] = str(lonely)

        status = lab("status", "--instance", instance, env=shell)
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"running: True (pid {pid})" in status.stdout
        assert f"ESL        127.0.0.1:{running.esl_port}" in status.stdout
        assert "UP " in status.stdout  # FreeSWITCH's own status, over its Event Socket

        down = lab("down", "--instance", instance, env=shell)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not running.status().running, "FreeSWITCH still runs"
        stopped = lab("status", "--instance", instance, env=shell)
        assert stopped.returncode == 3, stopped.stdout + stopped.stderr
        assert "built: True" in stopped.stdout
    finally:
        running.down()
        remove_instance(running)
