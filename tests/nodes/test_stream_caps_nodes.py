"""The caps on open event streams (``[limits] open_streams_per_key``,
``open_streams_per_organization``) count the streams of every node sharing one PostgreSQL, as
a client sees it through the nodes' REST APIs: streams opened on node a count against the caps
on node b (``429 Too many streams``), another organization still streams, and a stream that
ends frees its place on every node.

A node killed with streams open (``kill -9``: nothing is closed) leaves them counted until its
lease expires; then the surviving node gives their places out again.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import ClientResponse

from api.conftest import Api as AppApi
from api.conftest import serving
from fakes.world import DESTINATION, GLOBEX_ASSISTANT_ID, SUPPORT_ID, make_settings
from nodes.test_nodes_lab import serving_nodes, some_nodes
from pg_server import fresh_database
from tenancy.test_streams import bearer, refused_for_too_many_streams
from voicedock.config import Settings
from voicedock.domain.records import utcnow

WAIT = 30.0  # seconds: a bound against a hang (a killed node's lease is 3 s), not a measurement


def capped(settings: Settings, node_id: str) -> Settings:
    settings.node.id = node_id
    settings.limits.open_streams_per_key = 2
    settings.limits.open_streams_per_organization = 3
    return settings


async def too_many_streams(resp: ClientResponse) -> str:
    """The documented refusal (``429``, ``Retry-After``, the error body): its message."""
    return str((await refused_for_too_many_streams(resp))["message"])


async def ringing_call(node: AppApi, key: str, assistant_id: str) -> str:
    """A call placed through ``node`` that rings (the PBX never answers it): its stream stays
    open."""
    body = {"destination": DESTINATION, "assistant_id": assistant_id}
    resp = await node.client.post("/calls/outbound", json=body, headers=bearer(key))
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["call_id"])


async def stream(node: AppApi, call_id: str, key: str) -> ClientResponse:
    return await node.client.get(f"/calls/{call_id}/events", headers=bearer(key))


@pytest.mark.postgres
async def test_streams_open_on_one_node_count_against_the_caps_on_another(
    postgres_server: str, streams: list[ClientResponse]
) -> None:
    dsn = await fresh_database(postgres_server)
    settings_a = capped(make_settings(dsn), "node-a")
    settings_b = capped(make_settings(dsn), "node-b")
    async with serving(settings_a) as node_a, serving(settings_b) as node_b:
        wallboard, console = node_a.acme_key, node_b.acme_key  # two keys of acme
        call_id = await ringing_call(node_a, wallboard, SUPPORT_ID)
        # The wallboard's key opens its cap (2) on node a ...
        for _ in range(2):
            streams.append(await stream(node_a, call_id, wallboard))
            assert streams[-1].status == 200
        # ... and node b refuses it a third.
        assert "API key" in await too_many_streams(await stream(node_b, call_id, wallboard))
        # Another key of acme gets the organization's last place (3) on node b ...
        streams.append(await stream(node_b, call_id, console))
        assert streams[-1].status == 200
        # ... and no more, on either node.
        for node in (node_a, node_b):
            message = await too_many_streams(await stream(node, call_id, console))
            assert "organization" in message
        # Another organization still streams its own call.
        globex_call = await ringing_call(node_b, node_b.globex_key, GLOBEX_ASSISTANT_ID)
        streams.append(await stream(node_a, globex_call, node_b.globex_key))
        assert streams[-1].status == 200
        # A stream closed on node a gives its place back to node b.
        streams.pop(0).close()
        async with asyncio.timeout(WAIT):
            while (again := await stream(node_b, call_id, wallboard)).status == 429:
                again.close()
                await asyncio.sleep(0.1)
        streams.append(again)
        assert again.status == 200
        assert "API key" in await too_many_streams(await stream(node_a, call_id, wallboard))


async def open_stream(
    http: aiohttp.ClientSession, base: str, call_id: str, key: str, into: list[ClientResponse]
) -> int:
    """Open the call's event stream on the node at ``base`` (kept open in ``into``), or have it
    refused (closed at once): its status."""
    resp = await http.get(f"{base}/calls/{call_id}/events", headers=bearer(key))
    if resp.status == 200:
        await resp.content.readany()  # the stream is open: its "retry:" line arrived
        into.append(resp)
    else:
        resp.release()
    return resp.status


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.timeout(120)
async def test_a_killed_nodes_streams_stop_counting_when_its_lease_expires(
    postgres_server: str, tmp_path: Path, streams: list[ClientResponse]
) -> None:
    database = await fresh_database(postgres_server)
    ports, configs = some_nodes(("a", "b"), tmp_path, database, None, None, {"a": 3, "b": 3})
    for config in configs.values():
        config.write_text(config.read_text() + "\n[limits]\nopen_streams_per_organization = 2\n")
    base_a, base_b = (f"http://127.0.0.1:{ports[name]}" for name in ("a", "b"))
    async with (
        aiohttp.ClientSession() as http,
        serving_nodes(http, ports, configs, database, tmp_path) as (a_process, key),
    ):
        # A call scheduled for tomorrow: its stream stays open (no PBX is needed for it).
        body = {
            "destination": DESTINATION,
            "assistant_id": SUPPORT_ID,
            "scheduled_at": (utcnow() + timedelta(days=1)).isoformat(),
        }
        async with http.post(f"{base_a}/calls/outbound", json=body, headers=bearer(key)) as resp:
            assert resp.status == 201, await resp.text()
            call_id = str((await resp.json())["call_id"])
        for _ in range(2):
            assert await open_stream(http, base_a, call_id, key, streams) == 200
        assert await open_stream(http, base_b, call_id, key, streams) == 429
        a_process.send_signal(signal.SIGKILL)  # its streams are never closed
        a_process.wait(timeout=10)
        async with asyncio.timeout(WAIT):
            while (status := await open_stream(http, base_b, call_id, key, streams)) == 429:
                await asyncio.sleep(0.2)
        assert status == 200
        # Node b counts its own again: one more place, then the cap.
        assert await open_stream(http, base_b, call_id, key, streams) == 200
        assert await open_stream(http, base_b, call_id, key, streams) == 429
        for resp in streams:
            resp.close()
