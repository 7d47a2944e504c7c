"""The real lab FreeSWITCH for tests marked ``freeswitch_lab`` (the ``freeswitch_lab`` fixture,
via tests/conftest.py; one instance per session, shared by tests/freeswitch_lab and the call
contract's ``freeswitch-lab`` backend).

Built once from ``../shared/freeswitch`` into ``~/.cache/voicedock/freeswitch-<key>`` (about
5 minutes cold, on 2 cores; the build runs after collection, outside every test's timeout),
then started on free loopback ports. When the sources are missing (a user's machine) or the
lab cannot be built or started, the tests are skipped with the reason printed, except under
``CI=true`` where that is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from voicedock.lab import freeswitch_build
from voicedock.lab.errors import LabError
from voicedock.lab.freeswitch import LabFreeswitch, remove_instance
from voicedock.lab.freeswitch_config import FreeswitchLabSettings

_BUILD_ERROR: list[str] = []


def _unavailable(reason: str) -> None:
    message = f"lab FreeSWITCH unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    print(message)
    pytest.skip(message)


def _blocker() -> str | None:
    if os.geteuid() != 0:
        return "needs root (debootstrap, chroot, mount)"
    if shutil.which("chroot") is None:
        return "no chroot binary"
    try:
        freeswitch_build.FreeswitchSources.find(freeswitch_build.default_sources_dir())
    except LabError as exc:
        return str(exc)
    return None


def build_after_collection(session: pytest.Session) -> None:
    """Build (once, cached) before the tests run, so no test's timeout covers the build."""
    if session.config.option.collectonly:
        return
    if not any(item.get_closest_marker("freeswitch_lab") for item in session.items):
        return
    if _blocker() is not None:
        return
    try:
        sources = freeswitch_build.FreeswitchSources.find(freeswitch_build.default_sources_dir())
        freeswitch_build.build(sources, log=True)
    except (LabError, OSError) as exc:
        _BUILD_ERROR.append(str(exc))


@pytest.fixture(scope="session")
def freeswitch_lab() -> Iterator[LabFreeswitch]:
    blocker = _blocker() or (_BUILD_ERROR[0] if _BUILD_ERROR else None)
    if blocker is not None:
        _unavailable(blocker)
    settings = FreeswitchLabSettings(instance=f"pytest-fs-{os.getpid()}").with_free_ports()
    lab = LabFreeswitch(settings, verbose=False)
    try:
        lab.up(timeout=60)
    except (LabError, OSError) as exc:
        tail = lab.log_tail() if lab._has_build() else ""
        lab.down()
        _unavailable(f"{exc}\n{tail}")
    try:
        yield lab
    finally:
        lab.down()
        # VOICEDOCK_LAB_KEEP=1 keeps the instance's config, log and recordings.
        if os.environ.get("VOICEDOCK_LAB_KEEP") != "1":
            remove_instance(lab)
