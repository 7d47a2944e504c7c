"""Calls placed while Asterisk restarts (issue #20, item 2): restart detection ends only calls
that existed before the restart, and whatever the API reports failed has no leg at the PBX.

A client places a call every 0.7 s through a crash (kill -9) or a graceful restart of the lab
Asterisk. Afterwards the API and the PBX must agree: no ``failed`` call has a channel, every
channel of ours belongs to an ``in-progress`` call, and no call the fresh Asterisk carries is
``failed/pbx-restart``.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import LiveService, serve, service_settings
from fakes.world import SUPPORT_ID
from pbx.lab_calls import ANSWERS
from voicedock.config import Settings
from voicedock.lab.server import LabAsterisk
from voicedock.pbx.asterisk import AsteriskPbx
from voicedock.pbx.asterisk_ami import AmiClient
from voicedock.pbx.asterisk_ari import AriClient
from voicedock.pbx.asterisk_backoff import Backoff
from voicedock.pbx.asterisk_media import leg_id

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk, pytest.mark.timeout(150)]

CLIENTS = 3  # each places CALLS calls, one every 0.7 s
CALLS = 6
INTERVAL = 0.7
RESTART_AFTER = 1.5  # seconds after the first call


def _pbx(settings: Settings) -> AsteriskPbx:
    """Fast reconnects; originates wait through the whole restart for the app to register
    (so some are waiting the moment it registers on the fresh Asterisk)."""
    asterisk = settings.pbx.asterisk
    ari = AriClient(asterisk, heartbeat=2.0, backoff=Backoff(initial=0.05, cap=0.3))
    ami = AmiClient(asterisk, ping_interval=1.0, ping_timeout=1.0, backoff=Backoff(0.05, 0.3))
    return AsteriskPbx(asterisk, ari=ari, ami=ami, register_timeout=20.0)


async def _post_call(live: LiveService) -> str | None:
    body = {"destination": ANSWERS, "assistant_id": SUPPORT_ID}
    resp = await live.client.post("/calls/outbound", json=body, headers=live.auth())
    data: Any = await resp.json()
    call_id = data.get("call_id") if isinstance(data, dict) else None
    return str(call_id) if call_id else None


async def _client(live: LiveService, placed: list[str], delay: float) -> None:
    await asyncio.sleep(delay)
    for _ in range(CALLS):
        call_id = await _post_call(live)
        if call_id is not None:
            placed.append(call_id)
        await asyncio.sleep(INTERVAL)


async def _restart(lab: LabAsterisk, how: str) -> None:
    try:
        if how == "crash":
            pid = lab.status().pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            async with asyncio.timeout(10):
                while lab.status().running:
                    await asyncio.sleep(0.05)
        await asyncio.to_thread(lab.down)
        await asyncio.to_thread(lab.up, timeout=60)
    finally:
        if not lab.status().running:
            await asyncio.to_thread(lab.up, timeout=60)


async def _channels(live: LiveService) -> set[str]:
    return {str(c.get("id", "")) for c in await live.pbx.ari.list_channels()}


async def _status(live: LiveService, call_id: str) -> dict[str, Any]:
    resp = await live.client.get(f"/calls/{call_id}", headers=live.auth())
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def _legs(call_id: str) -> set[str]:
    return {call_id, leg_id(call_id, "media")}


async def _check_agreement(live: LiveService, placed: list[str]) -> None:
    """The API and the PBX agree on every call (statuses read after the channel list, so a
    call that ended in between is seen ended, never the other way round)."""
    channels = await _channels(live)
    for call_id in placed:
        call = await _status(live, call_id)
        on_pbx = _legs(call_id) & channels
        if call["status"] == "failed":
            assert not on_pbx, (call_id, call["error"], on_pbx)
        if call_id in channels and call["status"] != "ended":
            # Up at the PBX (and not ended since the list was read): in progress.
            assert call["status"] == "in-progress", (call_id, call)
            assert call.get("error") != "pbx-restart", call


async def _end_all(live: LiveService, placed: list[str]) -> None:
    replies: dict[str, int] = {}
    for call_id in placed:
        resp = await live.client.post(
            f"/calls/{call_id}/control", json={"type": "end-call"}, headers=live.auth()
        )
        replies[call_id] = resp.status
        # 200: taken; 409: the call had ended already. Anything else leaves it up.
        assert resp.status in (200, 409), (call_id, resp.status, await resp.text())
    ours = {leg for call_id in placed for leg in _legs(call_id)}
    left: set[str] = set()
    for _ in range(100):  # 10 s to clear every leg once the API ended the calls
        left = ours & await _channels(live)
        if not left:
            return
        await asyncio.sleep(0.1)
    calls = {c: (await _status(live, c)) for c in placed if _legs(c) & left}
    shown = {
        c: (call["status"], call.get("error"), replies[c], _legs(c) & left)
        for c, call in calls.items()
    }
    raise AssertionError(f"legs left at the PBX after every call ended: {shown}")


@pytest.mark.parametrize("originate_via", ["ari", "ami"])
@pytest.mark.parametrize("how", ["crash", "graceful"])
async def test_calls_placed_during_a_restart_are_never_failed_while_up(
    lab: LabAsterisk, tmp_path: Path, how: str, originate_via: str
) -> None:
    settings = service_settings(lab, tmp_path / "race.db", originate_via)
    live = await serve(settings, _pbx(settings))
    placed: list[str] = []
    try:
        async with asyncio.TaskGroup() as tg:
            for n in range(CLIENTS):
                tg.create_task(_client(live, placed, delay=n * INTERVAL / CLIENTS))
            await asyncio.sleep(RESTART_AFTER)
            await _restart(lab, how)
        await live.pbx.ari.wait_registered(20)
        # Let the last calls be answered and restart detection finish.
        async with asyncio.timeout(20):
            while True:
                statuses = [(await _status(live, c))["status"] for c in placed]
                if "connecting" not in statuses:
                    break
                await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        await _check_agreement(live, placed)
        calls = [await _status(live, c) for c in placed]
        up = [c for c in calls if c["status"] == "in-progress"]
        assert up, "no call was placed on the restarted Asterisk"
        await asyncio.sleep(2.0)  # a wrong pbx-restart would have hit a surviving call by now
        await _check_agreement(live, placed)
        await _end_all(live, placed)
    finally:
        try:
            for channel in await _channels(live):
                if any(channel in _legs(c) for c in placed):
                    await live.pbx.ari.hangup_channel(channel)
        finally:
            await live.client.close()
