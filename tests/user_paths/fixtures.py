"""``backend``: the running service on each PBX, one per test module (see ``backends.py``).

Test modules import it (``from user_paths.fixtures import backend``) and parametrize it
indirectly with ``BACKEND_MARKS``' names, so each case carries its PBX's markers.

The in-process fake FreeSWITCH (``freeswitch-fake``) stands in for the lab on machines without
one. In CI (``CI=true``) both lab PBXs must run, so its column would only repeat the lab
FreeSWITCH's at the same cost (the scenarios wait on the service's audio, not on the PBX): it
is left out there.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from e2e.audio_helpers import require_offline_speech, warm_offline_speech
from user_paths.backends import (
    UserPathBackend,
    asterisk_backend,
    freeswitch_fake_backend,
    freeswitch_lab_backend,
)

BACKEND_MARKS: dict[str, list[pytest.MarkDecorator]] = {
    "asterisk": [pytest.mark.asterisk, pytest.mark.e2e],
    # The same lab Asterisk 22 with the calls' audio over RTP instead of chan_websocket.
    "asterisk-rtp": [pytest.mark.asterisk, pytest.mark.e2e],
    # Debian bullseye's Asterisk 16.28: no chan_websocket, the audio over RTP (chosen by it).
    "asterisk16": [pytest.mark.asterisk16, pytest.mark.e2e],
    "freeswitch": [pytest.mark.freeswitch_lab, pytest.mark.e2e],
}
if os.environ.get("CI") != "true":
    BACKEND_MARKS["freeswitch-fake"] = [pytest.mark.unit]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[UserPathBackend]:
    require_offline_speech()
    await warm_offline_speech()  # a cold Whisper would hear a barge-in too late
    directory = tmp_path_factory.mktemp(f"user-paths-{request.param}")
    if request.param == "freeswitch-fake":
        async with freeswitch_fake_backend(directory) as fake:
            yield fake
        return
    if request.param == "freeswitch":
        fs_lab: Any = request.getfixturevalue("freeswitch_lab")
        async with freeswitch_lab_backend(fs_lab, directory) as fs:
            yield fs
        return
    if request.param == "asterisk16":
        lab16: Any = request.getfixturevalue("lab16")
        async with asterisk_backend(lab16, directory, name="asterisk16") as running:
            yield running
        return
    lab: Any = request.getfixturevalue("lab")
    transport = "rtp" if request.param == "asterisk-rtp" else "auto"
    async with asterisk_backend(
        lab, directory, name=request.param, media_transport=transport
    ) as running:
        yield running
