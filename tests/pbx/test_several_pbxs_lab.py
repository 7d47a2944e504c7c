"""Two lab Asterisks, one voicedock process: each carries its own trunk, and stopping one fails
only its calls.

The service runs as a process of its own (``nodes.node_process``: ``voicedock serve`` with fake
speech), configured as an operator does with ``[[pbx.asterisk.servers]]`` "a" (the session's
lab Asterisk) and "b" (a second lab instance from the same cached chroot, on ports of its own),
a trunk on each and a number on each trunk, and driven over REST only: a call placed from each
number lives on its trunk's server (``GET /calls/{id}`` ``pbx``); ``/health`` shows both
servers. Asterisk b crashes (``kill -9``): its call fails ``pbx-restart`` once b is back, while
a's call goes on; b places calls again; stopped cleanly with a call in conversation, b hangs it
up (``remote-hangup``) and refuses new ones (503) while a's call goes on, is still controlled
(``end-call``) and a places calls. Killed with a call on each server (``kill -9``) and started
again, the service resumes each call on its own server. An inbound call lives on the server it
came in on. Two nodes on one PostgreSQL each control both servers: a killed node's calls are
hung up on their own servers and ended ``node-lost`` by the other node.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from deploy.test_compose_as_shipped import Api, get_json, transcript, wait_healthy
from fakes.world import ACME, ACME_NUMBERS, SUPPORT_ID
from nodes.node_process import SPEECH, acme_api_key, node_process
from pbx.lab_calls import ANSWERS
from pg_server import free_port, fresh_database
from voicedock_lab.server import LabAsterisk
from voicedock_lab.settings import LabSettings

pytestmark = [pytest.mark.asterisk, pytest.mark.e2e]

# Asterisk b back up: its adapter reconnects (backoff capped at 10 s) and sees the restart.
FAILED_WITHIN = 40.0


@pytest.fixture
def second_lab(lab: LabAsterisk) -> Iterator[LabAsterisk]:
    """Another lab Asterisk from the session lab's chroot, on ports of its own; stopped after."""
    settings = LabSettings(
        cache_dir=lab.settings.cache_dir, instance=f"pytest-{os.getpid()}-b"
    ).with_free_ports()
    other = LabAsterisk(settings, verbose=False)
    try:
        other.up(timeout=60)
        yield other
    finally:
        other.down()
        shutil.rmtree(settings.instance_dir, ignore_errors=True)


def server_table(name: str, lab: LabAsterisk) -> str:
    q = json.dumps  # a JSON string is a TOML basic string
    return (
        f"[[pbx.asterisk.servers]]\nname = {q(name)}\nari_url = {q(lab.ari_url)}\n"
        f"ami_host = {q(lab.ami_host)}\nami_port = {lab.ami_port}"
    )


def service_config(
    path: Path,
    database: str,
    port: int,
    a: LabAsterisk,
    b: LabAsterisk,
    *,
    node_id: str = "",
) -> Path:
    """Servers a and b sharing [pbx.asterisk]'s credentials and the lab's app,
    a trunk on each, the first number on a's trunk and the second on b's."""
    q = json.dumps
    ari_user, ari_password = a.ari_credentials
    ami_user, ami_secret = a.ami_credentials
    lines = [
        f"[server]\nhost = {q('127.0.0.1')}\nport = {port}",
        f"[database]\nurl = {q(database)}",
        *([f"[node]\nid = {q(node_id)}"] if node_id else []),
        f"[speech]\nstt = {q(SPEECH)}\ntts = {q(SPEECH)}\nllm = {q(SPEECH)}",
        '[[trunks]]\nname = "carrier-a"\nendpoint = "carrier"\npbx = "a"',
        '[[trunks]]\nname = "carrier-b"\nendpoint = "carrier"\npbx = "b"',
        *(
            f"[[numbers]]\nnumber = {q(number)}\ntrunk = {q(trunk)}\n"
            f'organization = {q(ACME)}\nmax_concurrent_calls = 4\nassistant = "Support"'
            for number, trunk in zip(ACME_NUMBERS, ("carrier-a", "carrier-b"), strict=True)
        ),
        f'[[assistants]]\nname = "Support"\norganization = {q(ACME)}\nfirst_message = "Hi!"',
        '[pbx]\nkind = "asterisk"\n[pbx.asterisk]\n'
        f"ari_user = {q(ari_user)}\nari_password = {q(ari_password)}\n"
        f"app = {q(a.settings.app_name)}\n"
        f"ami_user = {q(ami_user)}\nami_secret = {q(ami_secret)}",
        server_table("a", a),
        server_table("b", b),
    ]
    path.write_text("\n\n".join(lines) + "\n")
    return path


async def health(http: aiohttp.ClientSession, base: str) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{base}/health") as resp:
        body: dict[str, Any] = await resp.json()
        return resp.status, body


async def place_from(api: Api, number_id: str) -> str:
    body = {"destination": ANSWERS, "assistant_id": SUPPORT_ID, "number_id": number_id}
    async with api.http.post(
        f"{api.base}/calls/outbound", json=body, headers={"Authorization": f"Bearer {api.key}"}
    ) as resp:
        placed = await resp.json()
        assert resp.status == 200, placed
    return str(placed["call_id"])


async def until(check: Any, within: float, what: str) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.3)


@pytest.mark.timeout(240)
async def test_a_second_asterisk_carries_its_own_trunk_and_its_outage_fails_only_its_calls(
    lab: LabAsterisk, second_lab: LabAsterisk, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'voicedock.db'}"
    port = free_port()
    config = service_config(tmp_path / "voicedock.toml", database, port, lab, second_lab)
    log = tmp_path / "service.log"
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        with node_process(config, log) as process:
            await wait_healthy(http, base, process, log)  # 200 (degraded) with one server up
            both = {name: {"status": "up", "links": {"ari": "up"}} for name in ("a", "b")}
            status, body = await until(
                lambda: _servers_are(http, base, both), 20, "health never showed a and b up"
            )
            assert status == 200, body
            key = await acme_api_key(database)
            api = Api(http, base, key)
            numbers = await get_json(http, f"{base}/phone-numbers", key)
            ids = {n["number"]: n["id"] for n in numbers["phone_numbers"]}
            trunks = await get_json(http, f"{base}/trunks", key)
            assert {t["name"]: t["pbx"] for t in trunks["trunks"]} == {
                "carrier-a": "a",
                "carrier-b": "b",
            }

            on_a = await place_from(api, ids[ACME_NUMBERS[0]])
            on_b = await place_from(api, ids[ACME_NUMBERS[1]])
            for call_id, server in ((on_a, "a"), (on_b, "b")):
                answered = await api.wait(call_id, lambda c: c["status"] == "in-progress", 20)
                assert answered["pbx"] == server, answered

            # Asterisk b crashes (kill -9: it reports nothing): a's call and server go on.
            pid = second_lab.status().pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            status, body = await until(
                lambda: _b_down(http, base), 20, "health never showed server b down"
            )
            assert status == 200, body  # calls are still placed on a
            assert body["status"] == "degraded", body
            assert body["can_place_calls"] is True, body
            assert body["pbx"]["servers"]["a"]["status"] == "up", body
            assert (await api.call(on_a))["status"] == "in-progress"

            # Asterisk b is back (a fresh start): the call it lost fails, a's goes on.
            await asyncio.to_thread(second_lab.up, timeout=60)
            lost = await until(
                lambda: _ended(api, on_b), FAILED_WITHIN, "b's call did not end after b restarted"
            )
            assert lost["status"] == "failed", (lost["end_reason"], lost["events"])
            assert lost["error"] == "pbx-restart", lost
            await until(lambda: _healthy(http, base), 30, "server b did not come back")
            assert (await api.call(on_a))["status"] == "in-progress"

            # b places calls again; stopped cleanly, it hangs its call up: a's goes on.
            again = await place_from(api, ids[ACME_NUMBERS[1]])
            answered = await api.wait(again, lambda c: c["status"] == "in-progress", 20)
            assert answered["pbx"] == "b"
            # In conversation (its media up) before b stops: Asterisk 22 stopped while the
            # media leg is being created dies in that request, a crash, not a clean stop.
            await api.wait(again, lambda c: bool(transcript(c, "assistant")), 20)
            await asyncio.to_thread(second_lab.down)
            hung_up = await until(lambda: _ended(api, again), 20, "b's call did not end")
            assert hung_up["status"] == "ended", hung_up
            assert hung_up["end_reason"] == "remote-hangup", hung_up
            kept = await api.call(on_a)
            assert kept["status"] == "in-progress", kept
            assert not [e for e in kept["events"] if e["type"] == "resumed"]

            # a's call is still controlled through the same API.
            ended = await api.end(on_a)
            assert ended["end_reason"] == "api-end-call", ended
            status, body = await until(
                lambda: _b_down(http, base), 20, "health never showed server b down"
            )
            assert body["pbx"]["servers"]["a"]["status"] == "up", body
            assert body["can_place_calls"] is True, body

            # While b is down its trunk's calls are refused (503), a's are placed.
            refused = {"destination": ANSWERS, "number_id": ids[ACME_NUMBERS[1]]}
            async with http.post(
                f"{base}/calls/outbound",
                json={**refused, "assistant_id": SUPPORT_ID},
                headers={"Authorization": f"Bearer {key}"},
            ) as resp:
                answer = await resp.json()
                assert resp.status == 503, answer
            failed = await api.call(answer["call_id"])
            assert (failed["status"], failed["error"], failed["pbx"]) == (
                "failed",
                "pbx-unavailable",
                "b",
            )
            placed = await place_from(api, ids[ACME_NUMBERS[0]])
            answered = await api.wait(placed, lambda c: c["status"] == "in-progress", 20)
            assert answered["pbx"] == "a"
            await api.end(placed)
    assert "+3161234" not in log.read_text()  # logs never carry a full phone number


async def _b_down(http: aiohttp.ClientSession, base: str) -> tuple[int, dict[str, Any]] | None:
    status, body = await health(http, base)
    servers = body["pbx"].get("servers", {})
    return (status, body) if servers.get("b", {}).get("status") == "down" else None


async def _servers_are(
    http: aiohttp.ClientSession, base: str, servers: dict[str, Any]
) -> tuple[int, dict[str, Any]] | None:
    status, body = await health(http, base)
    return (status, body) if body["pbx"].get("servers") == servers else None


async def _healthy(http: aiohttp.ClientSession, base: str) -> bool:
    status, _ = await health(http, base)
    return status == 200


async def _ended(api: Api, call_id: str) -> dict[str, Any] | None:
    call = await api.call(call_id)
    return call if call["status"] in ("ended", "failed") else None


@pytest.mark.timeout(240)
async def test_after_kill_9_each_call_is_resumed_on_its_own_server(
    lab: LabAsterisk, second_lab: LabAsterisk, tmp_path: Path
) -> None:
    """The service is killed with a call on each server and started again: each call goes on
    (resumed) on the server stored with it, and is ended there through the API."""
    database = f"sqlite:///{tmp_path / 'voicedock.db'}"
    port = free_port()
    config = service_config(tmp_path / "voicedock.toml", database, port, lab, second_lab)
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        first_log = tmp_path / "first.log"
        with node_process(config, first_log) as process:
            await wait_healthy(http, base, process, first_log)
            key = await acme_api_key(database)
            api = Api(http, base, key)
            numbers = await get_json(http, f"{base}/phone-numbers", key)
            ids = {n["number"]: n["id"] for n in numbers["phone_numbers"]}
            calls = {
                server: await place_from(api, ids[number])
                for server, number in zip(("a", "b"), ACME_NUMBERS, strict=True)
            }
            for call_id in calls.values():
                await api.wait(call_id, lambda c: c["status"] == "in-progress", 20)
            process.send_signal(signal.SIGKILL)
            process.wait(10)

        second_log = tmp_path / "second.log"
        with node_process(config, second_log) as process:
            await wait_healthy(http, base, process, second_log)
            api.log = second_log
            for server, call_id in calls.items():
                resumed = await api.wait(
                    call_id, lambda c: any(e["type"] == "resumed" for e in c["events"]), 20
                )
                assert resumed["status"] == "in-progress", resumed
                assert resumed["pbx"] == server, resumed
            for lab_pbx, call_id in ((lab, calls["a"]), (second_lab, calls["b"])):
                assert not await _no_channel_of(http, lab_pbx, [call_id])  # its legs are there
            for call_id in calls.values():
                ended = await api.end(call_id)
                assert ended["end_reason"] == "api-end-call", ended
            for server, lab_pbx in (("a", lab), ("b", second_lab)):
                left = await until(
                    lambda lab_pbx=lab_pbx: _no_channel_of(http, lab_pbx, calls.values()),
                    10,
                    f"server {server} still has a leg of an ended call",
                )
                assert left
        assert "resumed after the restart" in second_log.read_text()


async def _no_channel_of(http: aiohttp.ClientSession, lab: LabAsterisk, calls: Any) -> bool:
    """The lab Asterisk lists no channel (remote leg, media leg) of these calls."""
    token = base64.b64encode(":".join(lab.ari_credentials).encode()).decode()
    async with http.get(
        f"{lab.ari_url}/channels", headers={"Authorization": f"Basic {token}"}
    ) as resp:
        channels = await resp.json()
    return not [c for c in channels if any(call_id in c["id"] for call_id in calls)]


@pytest.mark.timeout(120)
async def test_an_inbound_call_lives_on_the_server_it_came_in_on(
    lab: LabAsterisk, second_lab: LabAsterisk, tmp_path: Path
) -> None:
    """The carrier behind b calls the first number (whose trunk is a's): voicedock answers it
    on b, stores it with b, and its end-call hangs up b's legs."""
    database = f"sqlite:///{tmp_path / 'voicedock.db'}"
    port = free_port()
    config = service_config(tmp_path / "voicedock.toml", database, port, lab, second_lab)
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "service.log"
    async with aiohttp.ClientSession() as http:
        with node_process(config, log) as process:
            await wait_healthy(http, base, process, log)
            key = await acme_api_key(database)
            api = Api(http, base, key)
            caller_leg = await asyncio.to_thread(second_lab.originate_inbound, ACME_NUMBERS[0])

            async def inbound() -> str | None:
                listed = await get_json(http, f"{base}/calls?status=in-progress", key)
                return next((str(c["id"]) for c in listed["calls"]), None)

            call_id = await until(inbound, 20, "the inbound call was not answered")
            call = await api.call(call_id)
            assert call["direction"] == "inbound", call
            assert call["pbx"] == "b", call
            ended = await api.end(call_id)
            assert ended["end_reason"] == "api-end-call", ended
            await until(
                lambda: _no_channel_of(http, second_lab, [call_id, caller_leg]),
                10,
                "b still has a leg of the ended inbound call",
            )


@pytest.mark.postgres
@pytest.mark.timeout(150)
async def test_a_dead_nodes_calls_are_hung_up_on_their_own_servers_by_another_node(
    lab: LabAsterisk, second_lab: LabAsterisk, postgres_server: str, tmp_path: Path
) -> None:
    """Two nodes on one PostgreSQL, each connected to both servers (each running its own ARI
    application there, ``voicedock-<node>``): node a, killed with a call on each server, has
    both hung up where they live and ended ``node-lost`` by node b."""
    database = await fresh_database(postgres_server)
    ports = {name: free_port() for name in ("a", "b")}
    configs = {
        name: service_config(
            tmp_path / f"{name}.toml",
            database,
            ports[name],
            lab,
            second_lab,
            node_id=name,
        )
        for name in ports
    }
    async with aiohttp.ClientSession() as http:
        with (
            node_process(configs["a"], tmp_path / "a.log") as a_process,
            node_process(configs["b"], tmp_path / "b.log") as b_process,
        ):
            base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            await wait_healthy(http, base["a"], a_process, tmp_path / "a.log")
            await wait_healthy(http, base["b"], b_process, tmp_path / "b.log")
            key = await acme_api_key(database)
            on_a = Api(http, base["a"], key)
            numbers = await get_json(http, f"{base['a']}/phone-numbers", key)
            ids = {n["number"]: n["id"] for n in numbers["phone_numbers"]}
            calls = {
                server: await place_from(on_a, ids[number])
                for server, number in zip(("a", "b"), ACME_NUMBERS, strict=True)
            }
            for call_id in calls.values():
                await on_a.wait(call_id, lambda c: c["status"] == "in-progress", 20)

            a_process.send_signal(signal.SIGKILL)
            a_process.wait(10)
            on_b = Api(http, base["b"], key)
            for server, call_id in calls.items():
                ended = await on_b.wait(call_id, lambda c: c["status"] in ("ended", "failed"), 30)
                assert (ended["status"], ended["end_reason"], ended["pbx"]) == (
                    "ended",
                    "node-lost",
                    server,
                ), ended
            for server, lab_pbx in (("a", lab), ("b", second_lab)):
                await until(
                    lambda lab_pbx=lab_pbx: _no_channel_of(http, lab_pbx, calls.values()),
                    10,
                    f"server {server} still has a leg of node a's calls",
                )
