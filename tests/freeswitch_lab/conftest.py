"""The real lab FreeSWITCH for tests marked ``freeswitch_lab`` (one instance per session).

Built once from ``../shared/freeswitch`` into ``~/.cache/voicedock/freeswitch-<key>`` (about
5 minutes cold, on 2 cores; the build runs after collection, outside every test's timeout),
then started on free loopback ports. When the sources are missing (a user's machine) or the
lab cannot be built or started, the tests are skipped with the reason printed, except under
``CI=true`` where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from e2e.conftest import start_app
from fakes.world import ACME
from freeswitch.live_service import freeswitch_settings, speech_fakes, until
from freeswitch_lab.lab_service import LabService
from voicedock.api.api_keys import issue_api_key
from voicedock.config import TrunkSettings
from voicedock.lab import freeswitch_build
from voicedock.lab.errors import LabError
from voicedock.lab.freeswitch import LabFreeswitch, remove_instance
from voicedock.lab.freeswitch_config import FreeswitchLabSettings
from voicedock.pbx.freeswitch import FreeswitchPbx

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


def pytest_collection_finish(session: pytest.Session) -> None:
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


@pytest.fixture
async def live(freeswitch_lab: LabFreeswitch, tmp_path: Path) -> AsyncIterator[LabService]:
    async with speech_fakes() as (name, fakes):
        settings = freeswitch_settings(
            None,
            tmp_path / "fslab.db",
            name,
            esl_port=freeswitch_lab.esl_port,
            esl_password=freeswitch_lab.esl_password,
        )
        settings.policy.internal_targets = [
            *settings.policy.internal_targets,
            "busyagent",
            "warmaccept",
            "warmdecline",
            "warmhangup",
        ]
        # The lab's trunk: its sofia gateway "carrier" on the voicedock profile.
        settings.trunks = [
            TrunkSettings(name="carrier", endpoint=freeswitch_lab.settings.trunk_name)
        ]
        client, service = await start_app(settings)
        try:
            assert isinstance(service.pbx, FreeswitchPbx)
            async with asyncio.timeout(10):
                await service.pbx.esl.wait_connected()
            key, _ = await issue_api_key(service.store, ACME)
            running = LabService(client, service, key, freeswitch_lab, fakes)
            before = await running.channels()
            yield running
            # Every test leaves FreeSWITCH as it found it: no leg of ours is left behind.
            await until(lambda: _no_new_channels(running, before), within=10)
        finally:
            await client.close()
            # A failed test's legs must not spill into the next test.
            freeswitch_lab.api("hupall NORMAL_CLEARING")


async def _no_new_channels(live: LabService, before: set[str]) -> bool:
    return not (await live.channels() - before)
