"""A campaign on the lab FreeSWITCH through REST: its contacts become ordinary calls through the
gateway, within the trunk's channel limit, each settled with the far end's outcome (answered,
busy) and retried by its rule; FreeSWITCH keeps no leg of them afterwards."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from freeswitch_lab.lab_service import lab_settings, serve_on_lab
from pbx.freeswitch.live_service import speech_fakes
from voicedock_lab.freeswitch import LabFreeswitch
from voicedock_lab.freeswitch_config import BUSY, HANGS_UP

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(120)]

MAX_CHANNELS = 2


async def test_campaign_on_freeswitch(freeswitch_lab: LabFreeswitch, tmp_path: Path) -> None:
    async with speech_fakes() as (name, _fakes):
        settings = lab_settings(freeswitch_lab, tmp_path / "campaign.db", name)
        settings.trunks[0].max_channels = MAX_CHANNELS
        settings.trunks[0].max_cps = 2
        for number in settings.numbers:
            number.max_concurrent_calls = 20
        async with serve_on_lab(freeswitch_lab, settings) as (client, service, key):
            headers = {"Authorization": f"Bearer {key}"}
            contacts = [{"destination": HANGS_UP}] * 3 + [{"destination": BUSY}] * 3
            body = {
                "name": "FreeSWITCH",
                "assistant": {"first_message": "Hello"},
                "contacts": contacts,
                "retries": {"busy": {"max_attempts": 2, "backoff_seconds": 0}},
            }
            created = await client.post("/campaigns", json=body, headers=headers)
            assert created.status == 201, await created.text()
            cid = (await created.json())["id"]
            most = 0
            deadline = time.monotonic() + 90
            while True:
                campaign = await (await client.get(f"/campaigns/{cid}", headers=headers)).json()
                if campaign["status"] == "finished":
                    break
                assert time.monotonic() < deadline, campaign
                live = await service.store.list_active_calls()
                most = max(most, len(live))
                await asyncio.sleep(0.05)
            assert most <= MAX_CHANNELS
            assert campaign["progress"]["by_outcome"] == {"answered": 3, "busy": 3}
            listed = await client.get(f"/campaigns/{cid}/contacts", headers=headers)
            attempts = Counter(
                (c["destination"], c["attempts"]) for c in (await listed.json())["contacts"]
            )
            assert attempts == {(HANGS_UP, 1): 3, (BUSY, 2): 3}
            calls = await (await client.get("/calls", headers=headers)).json()
            assert len(calls["calls"]) == 9
            assert {c["campaign_id"] for c in calls["calls"]} == {cid}
