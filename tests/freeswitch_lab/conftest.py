"""The running service on the lab FreeSWITCH (``live``); the lab itself is the session fixture
``freeswitch_lab`` of ``tests/freeswitch_lab_session.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from freeswitch.live_service import speech_fakes, until
from freeswitch_lab.lab_service import LabService, lab_settings, serve_on_lab
from voicedock.lab.freeswitch import LabFreeswitch


@pytest.fixture
async def live(freeswitch_lab: LabFreeswitch, tmp_path: Path) -> AsyncIterator[LabService]:
    async with speech_fakes() as (name, fakes):
        settings = lab_settings(freeswitch_lab, tmp_path / "fslab.db", name)
        settings.policy.internal_targets = [
            *settings.policy.internal_targets,
            "busyagent",
            "warmaccept",
            "warmdecline",
            "warmhangup",
        ]
        async with serve_on_lab(freeswitch_lab, settings) as (client, service, key):
            running = LabService(client, service, key, freeswitch_lab, fakes)
            before = await running.channels()
            yield running
            # Every test leaves FreeSWITCH as it found it: no leg of ours is left behind.
            await until(lambda: _no_new_channels(running, before), within=10)


async def _no_new_channels(live: LabService, before: set[str]) -> bool:
    return not (await live.channels() - before)
