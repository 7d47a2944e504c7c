"""A node killed (``kill -9``) in the middle of a campaign and started again, on PostgreSQL and
the lab Asterisk: every contact ends done after exactly one call, none is skipped, and the PBX
created no trunk channel that is not one of those calls (an AMI session of the test's own counts
them)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from deploy.test_compose_as_shipped import get_json, wait_healthy
from e2e.trunk_observer import observe_trunk
from fakes.world import SUPPORT_ID
from nodes.node_process import acme_api_key, node_process
from nodes.test_nodes_lab import node_config
from pg_server import free_port, fresh_database
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres, pytest.mark.e2e, pytest.mark.timeout(240)]

ANSWERS = "+31610000200"  # answers, hangs up after 1 s
CONTACTS = 40


async def test_a_node_killed_mid_campaign_dials_no_contact_twice(
    lab: LabAsterisk, postgres_server: str, tmp_path: Path
) -> None:
    database = await fresh_database(postgres_server)
    port = free_port()
    config = node_config(
        tmp_path / "a.toml", node_id="a", database=database, port=port, lab=lab, max_calls=50
    )
    trunk_table = '[[trunks]]\nname = "carrier"\nendpoint = "carrier"'
    config.write_text(
        config.read_text().replace(trunk_table, trunk_table + "\nmax_cps = 5\nmax_channels = 6")
    )
    base = f"http://127.0.0.1:{port}"
    contacts = [{"destination": ANSWERS, "variables": {"n": str(i)}} for i in range(CONTACTS)]
    async with aiohttp.ClientSession() as http, observe_trunk(lab, "carrier") as trunk:
        first_log = tmp_path / "a-1.log"
        with node_process(config, first_log) as first:
            await wait_healthy(http, base, first, first_log)
            key = await acme_api_key(database)
            body = {"name": "Restart", "assistant_id": SUPPORT_ID, "contacts": contacts}
            headers = {"Authorization": f"Bearer {key}"}
            async with http.post(f"{base}/campaigns", json=body, headers=headers) as resp:
                assert resp.status == 201, await resp.text()
                campaign_id = (await resp.json())["id"]
            async with asyncio.timeout(30):
                while len(trunk.created) < 8:  # mid-campaign: some calls up, most waiting
                    await asyncio.sleep(0.05)
            first.send_signal(signal.SIGKILL)
            first.wait()
        second_log = tmp_path / "a-2.log"
        with node_process(config, second_log) as second:
            await wait_healthy(http, base, second, second_log)
            async with asyncio.timeout(120):
                while (await _campaign(http, base, key, campaign_id))["status"] != "finished":
                    await asyncio.sleep(0.5)
            listed = await get_json(
                http, f"{base}/campaigns/{campaign_id}/contacts?limit=1000", key
            )
            calls = await get_json(http, f"{base}/calls?limit=1000", key)
        await asyncio.sleep(1)  # the last hangups reach the observer
    contact_rows = listed["contacts"]
    assert len(contact_rows) == CONTACTS
    assert {(c["state"], c["attempts"]) for c in contact_rows} == {("done", 1)}
    call_ids = [c["call_id"] for c in contact_rows]
    assert len(set(call_ids)) == CONTACTS  # one call each, none shared
    campaign_calls = {c["id"] for c in calls["calls"] if c["campaign_id"] == campaign_id}
    assert campaign_calls == set(call_ids)  # and no other call of the campaign
    # Every channel the PBX created on the trunk is one of those calls: none was dialed twice.
    assert len(trunk.created) <= CONTACTS
    assert len(trunk.created) >= CONTACTS - 6  # at most the kill's in-flight ones never dialed
    assert trunk.most_at_once <= 6


async def _campaign(http: aiohttp.ClientSession, base: str, key: str, cid: str) -> Any:
    return await get_json(http, f"{base}/campaigns/{cid}", key)
