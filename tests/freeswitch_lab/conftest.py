"""The running service on the lab FreeSWITCH (``live``); the lab itself is the session fixture
``freeswitch_lab`` of ``tests/freeswitch_lab_session.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from e2e.conftest import start_app
from fakes.world import ACME
from freeswitch.live_service import speech_fakes, until
from freeswitch_lab.lab_service import LabService, lab_settings
from voicedock.api.api_keys import issue_api_key
from voicedock.lab.freeswitch import LabFreeswitch
from voicedock.pbx.freeswitch import FreeswitchPbx


@pytest.fixture
async def live(freeswitch_lab: LabFreeswitch, tmp_path: Path) -> AsyncIterator[LabService]:
    async with speech_fakes() as (name, fakes):
        settings = lab_settings(freeswitch_lab, tmp_path / "fslab.db", name)
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
