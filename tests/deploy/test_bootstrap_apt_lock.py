"""scripts/bootstrap.sh's apt-get (scripts/apt-get-waiting.sh) waits while another apt or dpkg
holds the package system's lock, as a fresh machine's unattended-upgrades does, and gives up
after ``VOICEDOCK_APT_LOCK_WAIT`` seconds with apt-get's own error.

The real apt-get runs against a package root of its own (``APT_CONFIG``: its lists, its dpkg
status and their locks in a temporary folder, no package sources), so nothing is downloaded or
installed and no lock of the machine is touched; the test holds that root's lock the way apt
and dpkg do (a POSIX record lock), as another apt would."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from voicedock_lab.config import find_project_root

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get (Debian, Ubuntu)"),
]

PROJECT = find_project_root(Path(__file__))
SCRIPT = PROJECT / "scripts" / "apt-get-waiting.sh"
LISTS_LOCK = "var/lib/apt/lists/lock"  # apt-get update's
FRONTEND_LOCK = "var/lib/dpkg/lock-frontend"  # apt-get install's (and dpkg's frontends')


@pytest.fixture
def apt_root(tmp_path: Path) -> Path:
    """An empty package root: apt-get update and install succeed there, doing nothing."""
    root = tmp_path / "root"
    for folder in (
        "etc/apt/apt.conf.d",
        "etc/apt/preferences.d",
        "etc/apt/sources.list.d",
        "etc/apt/trusted.gpg.d",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
        "var/lib/dpkg",
        "var/log/apt",
    ):
        (root / folder).mkdir(parents=True)
    (root / "etc/apt/sources.list").touch()
    (root / "var/lib/dpkg/status").touch()
    (tmp_path / "apt.conf").write_text(
        f'Dir "{root}/";\nDir::State::status "{root}/var/lib/dpkg/status";\n'
    )
    return root


@contextlib.contextmanager
def lock_held(path: Path, seconds: float | None) -> Iterator[None]:
    """``path`` locked as apt locks it; released after ``seconds`` (None: on leaving)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    release = threading.Timer(seconds, os.close, (fd,)) if seconds is not None else None
    if release is not None:
        release.start()
    try:
        yield
    finally:
        if release is not None:
            release.join()  # it has closed the file (and so released the lock)
        else:
            os.close(fd)


def apt_get(
    apt_root: Path, *args: str, wait: int
) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {
        **os.environ,
        "APT_CONFIG": str(apt_root.parent / "apt.conf"),
        "VOICEDOCK_APT_LOCK_WAIT": str(wait),
        "DEBIAN_FRONTEND": "noninteractive",
    }
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=wait + 30,
        check=False,
    )
    return done, time.monotonic() - started


@pytest.mark.parametrize(
    ("command", "lock"),
    [(("update", "-qq"), LISTS_LOCK), (("install", "-y", "-qq"), FRONTEND_LOCK)],
    ids=["update", "install"],
)
def test_waits_while_another_apt_holds_the_lock(
    apt_root: Path, command: tuple[str, ...], lock: str
) -> None:
    with lock_held(apt_root / lock, seconds=3.0):
        done, elapsed = apt_get(apt_root, *command, wait=60)
    assert done.returncode == 0, done.stderr
    assert elapsed >= 2.5, (elapsed, done.stderr)  # it waited for the lock's release
    # It said once what it waits for, naming the lock and its holder (this test's process).
    [said] = [line for line in done.stderr.splitlines() if "waiting up to 60 s" in line]
    assert f"Could not get lock {apt_root / lock}" in said
    assert f"held by process {os.getpid()}" in said


def test_gives_up_after_the_wait(apt_root: Path) -> None:
    with lock_held(apt_root / LISTS_LOCK, seconds=None):
        done, elapsed = apt_get(apt_root, "update", "-qq", wait=2)
    assert done.returncode == 100, done.stderr  # apt-get's own code for a held lock
    assert 2.0 <= elapsed < 15, (elapsed, done.stderr)
    assert f"E: Could not get lock {apt_root / LISTS_LOCK}" in done.stderr
    assert "the lock was still held after 2 s" in done.stderr


def test_other_failures_are_not_waited_for(apt_root: Path) -> None:
    done, elapsed = apt_get(apt_root, "install", "-y", "voicedock-no-such-package", wait=60)
    assert done.returncode == 100
    assert "Unable to locate package voicedock-no-such-package" in done.stderr
    assert "waiting" not in done.stderr
    assert elapsed < 10


def test_bootstrap_installs_through_it() -> None:
    """Every apt-get bootstrap.sh runs goes through the waiting wrapper."""
    bootstrap = (PROJECT / "scripts" / "bootstrap.sh").read_text()
    code = [line for line in bootstrap.splitlines() if not line.lstrip().startswith("#")]
    assert any("scripts/apt-get-waiting.sh" in line for line in code)
    assert not [line for line in code if "apt-get " in line], "apt-get run directly"
