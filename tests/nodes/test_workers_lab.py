"""``voicedock serve --workers 2`` on the lab Asterisk and one PostgreSQL, as an operator runs it:
one supervisor process, two worker processes (nodes ``box-w1`` and ``box-w2``, each its own
ARI application), one API port.

Calls placed through the one API port (a new connection each, as clients behind a load
balancer) land on both workers. A call served by one worker is controlled (``say``) and
listened to through the other worker's own port, and ``/health`` on the API port lists both.
``kill -9`` of one worker leaves the other's call up (a ``say`` still carried out) while the
supervisor starts the killed worker again under its node id, which resumes its call. ``SIGTERM``
to the supervisor drains both: the calls go on until they are ended, then every process of the
tree exits, the supervisor with status 0.

The real command line too (no PBX): ``voicedock nodes drain`` drains every worker of the machine
and the supervisor exits; a supervisor killed (``kill -9``) leaves no worker behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from deploy.test_compose_as_shipped import Api, wait_healthy
from fakes.world import SUPPORT_ID
from nodes.node_process import acme_api_key, node_process
from nodes.test_nodes_lab import ECHO, lab_ids, node_config, of_call
from pg_server import fresh_database
from process_helpers import alive, free_ports
from voicedock.domain.records import Call
from voicedock.store import open_store
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

WORKERS = ("box-w1", "box-w2")
SAID = "One moment please, I am checking your order."


async def leases(database: str) -> dict[str, int]:
    """The running nodes' process ids, by node id."""
    store = await open_store(database)
    try:
        return {lease.id: lease.pid for lease in await store.list_nodes()}
    finally:
        await store.aclose()


async def stored_calls(database: str, call_ids: list[str]) -> list[Call]:
    store = await open_store(database)
    try:
        found = [await store.get_call(None, call_id) for call_id in call_ids]
    finally:
        await store.aclose()
    return [call for call in found if call is not None]


async def health(http: aiohttp.ClientSession, base: str) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{base}/health") as resp:
        return resp.status, await resp.json()


async def say(api: Api, base: str, call_id: str, text: str) -> int:
    """``say`` sent through the API at ``base``: its status."""
    async with api.http.post(
        f"{base}/calls/{call_id}/control",
        json={"type": "say", "content": text},
        headers={"Authorization": f"Bearer {api.key}"},
    ) as resp:
        return resp.status


async def said(api: Api, call_id: str, text: str, within: float = 15) -> None:
    """The call's assistant said ``text`` (its transcript holds it)."""
    deadline = time.monotonic() + within
    while True:
        call = await api.call(call_id)
        if any(m["role"] == "assistant" and m["content"] == text for m in call["messages"]):
            return
        assert time.monotonic() < deadline, call["messages"]
        await asyncio.sleep(0.3)


async def listened(http: aiohttp.ClientSession, base: str, key: str, call_id: str) -> str:
    """A live listen through the API at ``base``: the node its hello names, once audio came."""
    url = f"{base}/calls/{call_id}/listen"
    async with http.ws_connect(url, headers={"Authorization": f"Bearer {key}"}) as ws:
        hello = await ws.receive_json(timeout=10)
        frame = await ws.receive_bytes(timeout=10)
        assert len(frame) > 8
        return str(hello["node"])


@contextlib.asynccontextmanager
async def fresh_connections() -> AsyncIterator[aiohttp.ClientSession]:
    """A client opening a connection per request: each lands on a worker the kernel picks."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
        yield http


@pytest.mark.asterisk
@pytest.mark.timeout(240)
async def test_two_workers_share_the_api_port_survive_a_kill_and_drain_together(
    lab: LabAsterisk, postgres_server: str, tmp_path: Path
) -> None:
    database = await fresh_database(postgres_server)
    port = free_ports(3)  # the API port, then each worker's own
    config = node_config(
        tmp_path / "box.toml",
        node_id="box",
        database=database,
        port=port,
        lab=lab,
        hook=None,
        max_calls=40,
        workers=2,
        # A worker's lease outlives a loaded machine's slow restart of the killed worker and
        # late renewals: the killed worker resumes its own calls (none is taken as lost).
        lease_seconds=30,
    )
    base = f"http://127.0.0.1:{port}"
    own = {node: f"http://127.0.0.1:{port + k}" for k, node in enumerate(WORKERS, 1)}
    log = tmp_path / "box.log"
    before = await lab_ids_now(lab)
    async with fresh_connections() as http:
        with node_process(config, log) as supervisor:
            await wait_healthy(http, base, supervisor, log)
            for node in WORKERS:
                await wait_healthy(http, own[node], supervisor, log)
            status, machine = await health(http, base)
            assert status == 200
            assert [(w["node"], w["status"]) for w in machine["workers"]] == [
                ("box-w1", "ok"),
                ("box-w2", "ok"),
            ]
            api = Api(http, base, await acme_api_key(database))

            # Placed through the one port: both workers take calls.
            by_node: dict[str, list[str]] = {}
            for _ in range(16):
                call_id = await api.place(ECHO, SUPPORT_ID)
                answered = await api.wait(call_id, lambda c: c["status"] == "in-progress", 15)
                by_node.setdefault(answered["node"], []).append(call_id)
                if len(by_node) == 2:
                    break
            assert sorted(by_node) == list(WORKERS), by_node
            first, second = by_node["box-w1"][0], by_node["box-w2"][0]

            # A call of box-w1 controlled and listened to through box-w2's own port.
            assert await say(api, own["box-w2"], first, SAID) == 200
            await said(api, first, SAID)
            assert await listened(http, own["box-w2"], api.key, first) == "box-w1"
            assert await listened(http, own["box-w1"], api.key, second) == "box-w2"

            # kill -9 of box-w1: box-w2's call stays up; box-w1 comes back and resumes its own.
            pids = await leases(database)
            workers = {node: pids[node] for node in WORKERS}
            supervisor_pid = supervisor.pid
            killed = workers["box-w1"]
            os.kill(killed, signal.SIGKILL)
            # Until the last of its threads has exited, the killed worker's listening socket is
            # open: a new connection to the shared port may still be queued on it, then reset
            # (as with any server that crashes). Once the supervisor has reaped it, the next
            # request lands on box-w2.
            deadline = time.monotonic() + 10
            while "box-w1 was killed (SIGKILL): starting it again" not in log.read_text():
                assert time.monotonic() < deadline, "box-w1's death was not noticed"
                await asyncio.sleep(0.05)
            assert await say(api, base, second, "Still here.") == 200
            await said(api, second, "Still here.")
            assert (await api.call(second))["status"] == "in-progress"
            deadline = time.monotonic() + 30
            while (await leases(database)).get("box-w1") in (None, killed):
                assert time.monotonic() < deadline, "box-w1 was not started again"
                await asyncio.sleep(0.3)
            await wait_healthy(http, own["box-w1"], supervisor, log)
            resumed = await api.wait(
                first, lambda c: any(e["type"] == "resumed" for e in c["events"]), 30
            )
            assert (resumed["status"], resumed["node"]) == ("in-progress", "box-w1")
            assert not [e for e in (await api.call(second))["events"] if e["type"] == "resumed"]
            workers["box-w1"] = (await leases(database))["box-w1"]

            # SIGTERM to the supervisor: both drain; their calls go on until ended.
            supervisor.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            while (await health(http, base))[1]["status"] != "draining":
                assert time.monotonic() < deadline, await health(http, base)
                await asyncio.sleep(0.2)
            assert await say(api, base, second, "Almost done.") == 200
            await said(api, second, "Almost done.")
            calls = [c for ids in by_node.values() for c in ids]
            for call_id in calls:
                assert (await api.call(call_id))["status"] == "in-progress"
            assert supervisor.poll() is None
            for call_id in calls:  # each worker exits once its last call has ended
                async with http.post(
                    f"{base}/calls/{call_id}/control",
                    json={"type": "end-call"},
                    headers={"Authorization": f"Bearer {api.key}"},
                ) as resp:
                    assert resp.status == 200, await resp.text()
            assert await asyncio.to_thread(supervisor.wait, 20) == 0
            assert not alive(supervisor_pid)
            for pid in workers.values():
                assert not alive(pid), "a worker outlived the drain"
        for call in await stored_calls(database, calls):
            assert (call.status.value, call.end_reason) == ("ended", "api-end-call")
        text = log.read_text()
        for node in WORKERS:
            assert f"node {node} drains (the supervisor's SIGTERM)" in text
            assert f"node {node} drained: no call left" in text
    async with asyncio.timeout(10):  # nothing of the calls left at the PBX
        while {i for i in await lab_ids_now(lab) - before if any(of_call({i}, c) for c in calls)}:
            await asyncio.sleep(0.2)


async def lab_ids_now(lab: LabAsterisk) -> set[str]:
    async with aiohttp.ClientSession() as http:
        return await lab_ids(http, lab)


def serving(config: Path, log: Path, *options: str) -> subprocess.Popen[bytes]:
    """``voicedock serve`` as an operator starts it."""
    command = [str(Path(sys.executable).with_name("voicedock")), "serve", "--config", str(config)]
    with log.open("wb") as out:
        return subprocess.Popen([*command, *options], stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.timeout(120)
async def test_voicedock_serve_workers_drained_by_nodes_drain_and_never_orphaned(
    postgres_server: str, tmp_path: Path
) -> None:
    database = await fresh_database(postgres_server)
    port = free_ports(3)
    config = node_config(
        tmp_path / "box.toml", node_id="box", database=database, port=port, lab=None
    )
    config.write_text(  # cloud speech: one worker per core by default; two asked here
        config.read_text()
        .replace('stt = "node-fake"', 'stt = "deepgram"')
        .replace('tts = "node-fake"', 'tts = "openai"')
        .replace('llm = "node-fake"', 'llm = "openai"')
    )
    for round_, log in enumerate((tmp_path / "drained.log", tmp_path / "killed.log")):
        process = serving(config, log, "--workers", "2")
        try:
            async with aiohttp.ClientSession() as http:
                await wait_healthy(http, f"http://127.0.0.1:{port + 2}", process, log)
                await wait_healthy(http, f"http://127.0.0.1:{port + 1}", process, log)
            workers = await leases(database)
            assert sorted(workers) == list(WORKERS)
            if round_ == 0:
                drain = await asyncio.to_thread(
                    subprocess.run,
                    [
                        str(Path(sys.executable).with_name("voicedock")),
                        "nodes",
                        "drain",
                        "--config",
                        str(config),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                )
                assert drain.returncode == 0, drain.stderr
                assert [line.split()[1] for line in drain.stdout.splitlines()] == list(WORKERS)
                assert await asyncio.to_thread(process.wait, 20) == 0
            else:
                process.send_signal(signal.SIGKILL)
                await asyncio.to_thread(process.wait, 10)
            deadline = time.monotonic() + 15
            while any(alive(pid) for pid in workers.values()):
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                await asyncio.sleep(0.1)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
    assert "its supervisor is gone" in (tmp_path / "killed.log").read_text()
    assert not await leases(database)  # each worker left cleanly, its lease gone
