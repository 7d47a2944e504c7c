"""The running service on the lab FreeSWITCH (``live``); the lab itself is the session fixture
``freeswitch_lab`` of ``tests/freeswitch_lab_session.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from freeswitch_lab.lab_service import LabService, running_lab_service
from voicedock_lab.freeswitch import LabFreeswitch


@pytest.fixture
async def live(freeswitch_lab: LabFreeswitch, tmp_path: Path) -> AsyncIterator[LabService]:
    async with running_lab_service(freeswitch_lab, tmp_path) as running:
        yield running
