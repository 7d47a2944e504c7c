"""The real lab FreeSWITCH for tests marked ``freeswitch_lab`` (the ``freeswitch_lab`` fixture,
via tests/conftest.py; one instance per session, shared by tests/freeswitch_lab and the call
contract's ``freeswitch-lab`` backend).

Built once into ``~/.cache/voicedock/freeswitch-<key>`` (about 5 minutes cold, on 2 cores; the
build runs after collection, outside every test's timeout) from ``$VOICEDOCK_FREESWITCH_SOURCES``,
``../shared/freeswitch`` or the pinned upstream archives it downloads (``freeswitch_sources``),
then started on free loopback ports. When no sources can be had (no folder and the network
closed) or the lab cannot be built or started, the tests are skipped with the reason printed,
except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NoReturn

import pytest

from lab_availability import DISCARD_STOP_S, chroot_blocker, keep_instance, unavailable
from teardown_parts import timed
from voicedock_lab import freeswitch_build, freeswitch_sources
from voicedock_lab.errors import LabError
from voicedock_lab.freeswitch import LabFreeswitch, remove_instance
from voicedock_lab.freeswitch_config import FreeswitchLabSettings

_BUILD_ERROR: list[str] = []


def _unavailable(reason: str) -> NoReturn:
    unavailable("lab FreeSWITCH", reason)


def _blocker() -> str | None:
    return chroot_blocker("debootstrap, chroot, mount")


def build_after_collection(session: pytest.Session) -> None:
    """Find (or download) the sources and build (once, cached) before the tests run, so no
    test's timeout covers them; what failed is the fixture's reason to skip (fail in CI)."""
    if session.config.option.collectonly:
        return
    if not any(item.get_closest_marker("freeswitch_lab") for item in session.items):
        return
    if _blocker() is not None:
        return
    try:
        sources = freeswitch_sources.locate()
        freeswitch_build.build(sources, log=True)
    except (LabError, OSError) as exc:
        _BUILD_ERROR.append(str(exc))


@pytest.fixture(scope="session")
def freeswitch_lab() -> Iterator[LabFreeswitch]:
    yield from running_lab(FreeswitchLabSettings(instance=f"pytest-fs-{os.getpid()}"))


def running_lab(settings: FreeswitchLabSettings) -> Iterator[LabFreeswitch]:
    """A lab FreeSWITCH of ``settings`` on free ports, up while the generator runs."""
    blocker = _blocker() or (_BUILD_ERROR[0] if _BUILD_ERROR else None)
    if blocker is not None:
        _unavailable(blocker)
    lab = LabFreeswitch(settings.with_free_ports(), verbose=False)
    try:
        lab.up(timeout=60)
    except (LabError, OSError) as exc:
        tail = lab.log_tail() if lab._has_build() else ""
        lab.down()
        _unavailable(f"{exc}\n{tail}")
    try:
        yield lab
    finally:
        name = f"lab FreeSWITCH {settings.instance}"
        if keep_instance():  # VOICEDOCK_LAB_KEEP=1: its config, log and recordings stay
            with timed(f"{name} stopped"):
                lab.down()
        else:
            # Nothing of this instance is kept: no need to wait out FreeSWITCH's graceful
            # shutdown (4-5 s idle, longer after a worker's calls) at the end of every worker.
            with timed(f"{name} stopped"):
                lab.down(timeout=DISCARD_STOP_S)
            with timed(f"{name} directory deleted"):
                remove_instance(lab)
