"""``kill -9`` of the shipped service with two live calls, then a restart (issue #20, item 1).

The service runs as shipped (``voicedock serve`` as a subprocess, the compose environment,
PostgreSQL, the lab Asterisk: the ``deployment`` fixture of test_compose_as_shipped). Two calls
to the lab's silent party are answered, the service is killed with SIGKILL, and the legs stay
up at the PBX (nobody hangs them up). The restarted service must, within 10 s of its start,
hang every one of them up (the lab's ARI lists none of their channels and bridges, nor the far
side's legs) and end both calls ``service-restart``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from deploy.test_compose_as_shipped import (
    Api,
    Deployment,
    deployment,
    get_json,
    serving,
    wait_healthy,
    wait_pbx_connected,
)
from e2e.audio_helpers import SILENT_PARTY, require_offline_speech
from voicedock.lab.server import LabAsterisk

__all__ = ["deployment"]  # the fixture, shared with test_compose_as_shipped

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk, pytest.mark.postgres]

RECOVERY_WITHIN = 10.0  # seconds from the restarted process's start


async def lab_ids(http: aiohttp.ClientSession, lab: LabAsterisk) -> tuple[set[str], set[str]]:
    """Ids of every channel and bridge the lab Asterisk lists (ARI GET /channels, /bridges)."""
    user, password = lab.ari_credentials
    auth = {"Authorization": aiohttp.encode_basic_auth(user, password)}
    found: list[set[str]] = []
    for what in ("channels", "bridges"):
        async with http.get(f"{lab.ari_url}/{what}", headers=auth) as resp:
            assert resp.status == 200, await resp.text()
            found.append({str(item["id"]) for item in await resp.json()})
    return found[0], found[1]


@pytest.mark.timeout(240)
async def test_kill_9_then_restart_hangs_up_the_live_calls_and_ends_them(
    deployment: Deployment, lab: LabAsterisk, tmp_path: Path
) -> None:
    require_offline_speech()  # the shipped assistant speaks with the offline engines
    migrate = deployment.run("voicedock", "migrate")
    assert migrate.returncode == 0, migrate.stderr
    created = deployment.run(
        "voicedock", "keys", "create", "--organization", deployment.organization
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]

    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        channels_before, bridges_before = await lab_ids(http, lab)
        first_log = tmp_path / "serve-1.log"
        with serving(deployment, first_log) as process:
            api = Api(http, deployment.api, key)
            await wait_healthy(http, deployment.api, process, first_log)
            await wait_pbx_connected(http, lab, deployment, process, first_log)
            assistants = (await get_json(http, f"{deployment.api}/assistants", key))["assistants"]
            assistant_id = assistants[0]["id"]
            calls = [await api.place(SILENT_PARTY, assistant_id) for _ in range(2)]
            for call_id in calls:
                await api.wait(call_id, lambda c: c["status"] == "in-progress", 30)
            channels, bridges = await lab_ids(http, lab)
            assert set(calls) <= channels  # outbound: our call id is the channel id
            assert len(bridges - bridges_before) == 2
            process.kill()  # SIGKILL: nothing of voicedock runs any more
            process.wait(timeout=10)

        # The legs outlive the process (the caller would hear silence until they hang up).
        await asyncio.sleep(1.0)
        left_channels, left_bridges = await lab_ids(http, lab)
        assert set(calls) <= left_channels
        assert left_bridges - bridges_before

        second_log = tmp_path / "serve-2.log"
        started = time.monotonic()
        with serving(deployment, second_log) as process:
            ended: dict[str, dict[str, Any]] = {}
            clean = False
            while time.monotonic() - started < RECOVERY_WITHIN:
                assert process.poll() is None, second_log.read_text()[-3000:]
                channels, bridges = await lab_ids(http, lab)
                clean = channels <= channels_before and bridges <= bridges_before
                if clean:
                    break
                await asyncio.sleep(0.1)
            took = time.monotonic() - started
            assert clean, (channels - channels_before, bridges - bridges_before, took)
            await wait_healthy(http, deployment.api, process, second_log)
            api = Api(http, deployment.api, key)
            for call_id in calls:
                ended[call_id] = await api.call(call_id)
            # Every leg is gone for good: nothing comes back a moment later.
            await asyncio.sleep(1.0)
            channels, bridges = await lab_ids(http, lab)
            assert channels <= channels_before
            assert bridges <= bridges_before
            assert process.poll() is None, second_log.read_text()[-3000:]

    for call_id, call in ended.items():
        assert call["status"] == "ended", (call_id, call["status"], call.get("error"))
        assert call["end_reason"] == "service-restart"
        status = [e["data"] for e in call["events"] if e["type"] == "status"]
        assert status[-1] == {"from": "in-progress", "to": "ended", "end_reason": "service-restart"}
        # The transcript the first run stored stays (the greeting, if it was spoken).
        assert all(m["content"] for m in call.get("messages") or [])
    text = second_log.read_text()
    assert SILENT_PARTY not in text
    assert key not in text
