"""The real lab Asterisk for tests marked ``asterisk``.

One lab instance per test session, on ports chosen at run time (two runs never clash), in the
shared cached chroot. If the lab cannot be provisioned or started, the tests are skipped with
the reason, except in CI (``CI=true``) where that is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from voicedock.lab.errors import LabError
from voicedock.lab.server import LabAsterisk
from voicedock.lab.settings import LabSettings


def _unavailable(reason: str) -> None:
    message = f"lab Asterisk unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    print(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def lab() -> Iterator[LabAsterisk]:
    if os.geteuid() != 0:
        _unavailable("needs root (debootstrap, chroot)")
    if shutil.which("chroot") is None:
        _unavailable("no chroot binary")
    settings = LabSettings(instance=f"pytest-{os.getpid()}").with_free_ports()
    instance = LabAsterisk(settings, verbose=False)
    try:
        instance.up(timeout=60)
    except (LabError, OSError) as exc:
        instance.down()
        _unavailable(str(exc))
    try:
        yield instance
    finally:
        instance.down()
        # VOICEDOCK_LAB_KEEP=1 keeps the instance's log and recordings for a post-mortem.
        if os.environ.get("VOICEDOCK_LAB_KEEP") != "1":
            shutil.rmtree(settings.instance_dir, ignore_errors=True)
