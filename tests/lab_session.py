"""The real lab Asterisk for tests marked ``asterisk`` (the ``lab`` fixture, via tests/conftest.py).

One lab instance per test session, shared by every directory that asks for it (tests/asterisk,
tests/contract, ...), on ports chosen at run time (two runs never clash), in the
shared cached chroot. If the lab cannot be provisioned or started, the tests are skipped with
the reason, except in CI (``CI=true``) where that is a failure.

A cold provisioning (debootstrap + apt-get, about 40-90 s) runs once after collection, outside
any test's timeout; later runs reuse the cached chroot.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import NoReturn

import pytest

from lab_availability import chroot_blocker, keep_instance, unavailable
from voicedock_lab import provision
from voicedock_lab.errors import LabError
from voicedock_lab.server import LabAsterisk
from voicedock_lab.settings import LabSettings

_PROVISION_ERROR: list[str] = []


def _unavailable(reason: str) -> NoReturn:
    unavailable("lab Asterisk", reason)


def _blocker() -> str | None:
    return chroot_blocker("debootstrap, chroot")


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if not any(item.get_closest_marker("asterisk") for item in session.items):
        return
    if _blocker() is not None or provision.is_provisioned(LabSettings()):
        return
    try:
        provision.provision(LabSettings(), log=True)
    except (LabError, OSError) as exc:
        _PROVISION_ERROR.append(str(exc))


@pytest.fixture(scope="session")
def lab() -> Iterator[LabAsterisk]:
    blocker = _blocker() or (_PROVISION_ERROR[0] if _PROVISION_ERROR else None)
    if blocker is not None:
        _unavailable(blocker)
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
        if not keep_instance():  # VOICEDOCK_LAB_KEEP=1: its log and recordings stay
            shutil.rmtree(settings.instance_dir, ignore_errors=True)
