"""The real lab Asterisk for tests marked ``asterisk`` (the ``lab`` fixture, via tests/conftest.py),
and the lab Asterisk 16 (Debian bullseye's 16.28) for tests marked ``asterisk16`` (``lab16``).

One lab instance per test session, shared by every directory that asks for it (tests/asterisk,
tests/contract, ...), on ports chosen at run time (two runs never clash), in the
shared cached chroot. If the lab cannot be provisioned or started, the tests are skipped with
the reason, except in CI (``CI=true``) where that is a failure.

A cold provisioning (debootstrap + apt-get, about 40-90 s; each version has a chroot of its
own) runs once after collection, outside any test's timeout; later runs reuse the cached chroot.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import NoReturn

import pytest

from lab_availability import DISCARD_STOP_S, chroot_blocker, keep_instance, unavailable
from teardown_parts import timed
from voicedock_lab import provision
from voicedock_lab.errors import LabError
from voicedock_lab.server import LabAsterisk
from voicedock_lab.settings import LabSettings

# The marker of the tests that need each lab Asterisk version.
VERSION_MARKERS = {"22": "asterisk", "16": "asterisk16"}
# Asterisk version -> why its chroot could not be provisioned.
_PROVISION_ERRORS: dict[str, str] = {}


def _unavailable(reason: str) -> NoReturn:
    unavailable("lab Asterisk", reason)


def _blocker() -> str | None:
    return chroot_blocker("debootstrap, chroot")


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    for version, marker in VERSION_MARKERS.items():
        if any(item.get_closest_marker(marker) for item in session.items):
            _provision(version)


def _provision(version: str) -> None:
    settings = LabSettings(asterisk=version)
    if _blocker() is not None or provision.is_provisioned(settings):
        return
    try:
        provision.provision(settings, log=True)
    except (LabError, OSError) as exc:
        _PROVISION_ERRORS[version] = str(exc)


@pytest.fixture(scope="session")
def lab16() -> Iterator[LabAsterisk]:
    """The lab Asterisk 16.28 (Debian bullseye): the same parties, trunk, DIDs and ARI/AMI
    users as ``lab``, on ports of its own (tests marked ``asterisk16``)."""
    blocker = _blocker() or _PROVISION_ERRORS.get("16")
    settings = LabSettings(instance=f"pytest-{os.getpid()}", asterisk="16")
    yield from _running_lab("lab Asterisk 16", blocker, settings)


@pytest.fixture(scope="session")
def lab() -> Iterator[LabAsterisk]:
    blocker = _blocker() or _PROVISION_ERRORS.get("22")
    yield from _running_lab("lab Asterisk", blocker, LabSettings(instance=f"pytest-{os.getpid()}"))


def _running_lab(what: str, blocker: str | None, settings: LabSettings) -> Iterator[LabAsterisk]:
    """The lab instance of ``settings`` on free ports, up until the session ends."""
    if blocker is not None:
        unavailable(what, blocker)
    settings = settings.with_free_ports()
    instance = LabAsterisk(settings, verbose=False)
    try:
        instance.up(timeout=60)
    except (LabError, OSError) as exc:
        instance.down()
        unavailable(what, str(exc))
    try:
        yield instance
    finally:
        name = f"{what} {settings.instance}"
        if keep_instance():  # VOICEDOCK_LAB_KEEP=1: its log and recordings stay
            with timed(f"{name} stopped"):
                instance.down()
        else:
            with timed(f"{name} stopped"):
                instance.down(timeout=DISCARD_STOP_S)
            with timed(f"{name} directory deleted"):
                shutil.rmtree(settings.instance_dir, ignore_errors=True)
