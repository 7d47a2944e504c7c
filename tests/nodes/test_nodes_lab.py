"""Two voicedock nodes, each a process of its own, on one real PostgreSQL and the lab Asterisk,
driven as an operator does: node a places a call through its REST API; node b starts and the
call stays up; node a is killed (``kill -9``) and node b hangs the call up at the PBX and ends it
``node-lost`` within 30 s, with exactly one end-of-call webhook. Commands sent to node b's API
for node a's call are carried out by node a, and node b's events stream shows the call's every
event. A second node on an SQLite database is refused with a clear message and leaves the first
one's call alone.

Each node runs its own ARI application, ``voicedock-<node id>`` (two nodes cannot share one:
Asterisk keeps the last websocket), and the lab's dialplan (the production one) hands each
inbound call to one live node's application: every call is answered once while both run, and
by the survivor once one is killed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from deploy.test_compose_as_shipped import TERMINAL, Api, wait_healthy
from e2e.test_events_e2e import sse_messages
from fakes.world import ACME, ACME_NUMBERS, SUPPORT_ID
from nodes.node_process import SPEECH, acme_api_key, node_process, process_env
from pbx.lab_calls import ANSWERS
from pg_server import free_port, fresh_database
from voicedock.domain.webhooks import generate_secret
from voicedock_lab.freeswitch import LabFreeswitch
from voicedock_lab.server import LabAsterisk
from webhooks.receiver import Receiver

pytestmark = [pytest.mark.asterisk, pytest.mark.postgres, pytest.mark.e2e]

SETTLED_WITHIN = 30.0  # seconds from the kill, with the default [node] lease_seconds


def node_config(
    path: Path,
    *,
    node_id: str,
    database: str,
    port: int,
    lab: LabAsterisk | None,
    app: str = "",
    hook: Receiver | None = None,
    lease_seconds: int | None = None,
    freeswitch: LabFreeswitch | None = None,
    max_calls: int = 4,
    stt: str = SPEECH,
    speech: str = SPEECH,
    tts: str | None = None,
    workers: int | None = None,
) -> Path:
    """The node's configuration file, as an operator writes it (the default lease unless
    ``lease_seconds``; ``max_calls`` at once on ACME's number; the fake speech, its STT
    ``stt`` and its TTS ``tts`` if given; ``speech="offline"`` for a node started as
    ``voicedock serve``, where the fakes are not registered; ``workers``: ``[node] workers``)."""
    q = json.dumps  # a JSON string is a TOML basic string
    lines = [
        f"[server]\nhost = {q('127.0.0.1')}\nport = {port}",
        f"[database]\nurl = {q(database)}",
        f"[node]\nid = {q(node_id)}"
        + (f"\nlease_seconds = {lease_seconds}" if lease_seconds is not None else "")
        + (f"\nworkers = {workers}" if workers is not None else ""),
        f"[speech]\nstt = {q(stt if speech == SPEECH else speech)}\ntts = {q(tts or speech)}\n"
        f"llm = {q(speech)}",
        '[[trunks]]\nname = "carrier"\nendpoint = "carrier"',
        f'[[numbers]]\nnumber = {q(ACME_NUMBERS[0])}\ntrunk = "carrier"\n'
        f'organization = {q(ACME)}\nmax_concurrent_calls = {max_calls}\nassistant = "Support"',
        f'[[assistants]]\nname = "Support"\norganization = {q(ACME)}\nfirst_message = "Hi!"',
        '[policy]\ninternal_targets = ["sales"]',
    ]
    if freeswitch is not None:
        lines.append(
            '[pbx]\nkind = "freeswitch"\n[pbx.freeswitch]\n'
            f"esl_host = {q(freeswitch.esl_host)}\nesl_port = {freeswitch.esl_port}\n"
            f"esl_password = {q(freeswitch.esl_password)}\nallow_default_password = true\n"
            f"media_port = {free_port()}"
        )
    elif lab is None:
        lines.append('[pbx]\nkind = "none"')
    else:
        ari_user, ari_password = lab.ari_credentials
        ami_user, ami_secret = lab.ami_credentials
        lines.append(
            '[pbx]\nkind = "asterisk"\n[pbx.asterisk]\n'
            f"ari_url = {q(lab.ari_url)}\nari_user = {q(ari_user)}\n"
            f"ari_password = {q(ari_password)}\napp = {q(app or lab.settings.app_name)}\n"
            f"ami_host = {q(lab.ami_host)}\nami_port = {lab.ami_port}\n"
            f"ami_user = {q(ami_user)}\nami_secret = {q(ami_secret)}"
        )
    if hook is not None:
        lines.append(
            "[egress]\nallow_loopback = true\n[[webhooks.endpoints]]\n"
            f'name = "crm"\norganization = {q(ACME)}\nurl = {q(hook.url)}\n'
            f"secret = {q(hook.secret)}"
        )
    path.write_text("\n\n".join(lines) + "\n")
    return path


def two_nodes(
    tmp_path: Path,
    database: str,
    lab: LabAsterisk,
    hook: Receiver,
    leases: dict[str, int] | None = None,
) -> tuple[dict[str, int], dict[str, Path]]:
    """Nodes a and b on ``database`` and the lab (the same configuration but for the node id;
    each runs its own ARI application): their ports and configuration files."""
    return some_nodes(("a", "b"), tmp_path, database, lab, hook, leases)


def some_nodes(
    names: Sequence[str],
    tmp_path: Path,
    database: str,
    lab: LabAsterisk | None,
    hook: Receiver | None,
    leases: dict[str, int] | None = None,
    max_calls: int = 4,
    stt: str = SPEECH,
) -> tuple[dict[str, int], dict[str, Path]]:
    """The named nodes on ``database`` and the lab (the same configuration but for the node
    id; each runs its own ARI application; no PBX without ``lab``): their ports and
    configuration files."""
    ports = {name: free_port() for name in names}
    configs = {
        name: node_config(
            tmp_path / f"{name}.toml",
            node_id=name,
            database=database,
            port=ports[name],
            lab=lab,
            hook=hook,
            lease_seconds=(leases or {}).get(name),
            max_calls=max_calls,
            stt=stt,
        )
        for name in ports
    }
    return ports, configs


async def answered_call(
    http: aiohttp.ClientSession,
    port: int,
    process: subprocess.Popen[bytes],
    log: Path,
    database: str,
) -> tuple[Api, str, dict[str, Any]]:
    """Once the node serves: its API with a key of ACME, and a call to the lab's answering
    party placed through it and answered (its id and ``GET /calls/{id}``)."""
    base = f"http://127.0.0.1:{port}"
    await wait_healthy(http, base, process, log)
    key = await acme_api_key(database)
    api = Api(http, base, key)
    call_id = await api.place(ANSWERS, SUPPORT_ID)
    answered = await api.wait(call_id, lambda c: c["status"] == "in-progress", 15)
    return api, call_id, answered


def ari_auth(lab: LabAsterisk) -> dict[str, str]:
    user, password = lab.ari_credentials
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def lab_ids(http: aiohttp.ClientSession, lab: LabAsterisk) -> set[str]:
    """Ids of every channel and bridge the lab Asterisk has."""
    headers = ari_auth(lab)
    found: set[str] = set()
    for what in ("channels", "bridges"):
        async with http.get(f"{lab.ari_url}/{what}", headers=headers) as resp:
            assert resp.status == 200
            found |= {str(item["id"]) for item in await resp.json()}
    return found


async def hang_up(http: aiohttp.ClientSession, lab: LabAsterisk, channel_id: str) -> None:
    """Hang the lab's channel up, as the party does."""
    async with http.delete(f"{lab.ari_url}/channels/{channel_id}", headers=ari_auth(lab)) as resp:
        assert resp.status in (204, 404)


def of_call(ids: set[str], call_id: str) -> set[str]:
    """The lab's channels and bridges of the call (its legs are named after the call id)."""
    return {i for i in ids if call_id in i}


async def all_at_pbx(
    http: aiohttp.ClientSession, lab: LabAsterisk, call_ids: Sequence[str]
) -> bool:
    """Each call has a channel at the lab."""
    ids = await lab_ids(http, lab)
    return all(of_call(ids, call_id) for call_id in call_ids)


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    receiver = Receiver(generate_secret())
    await receiver.start()
    yield receiver
    await receiver.stop()


def reports(hook: Receiver, call_id: str) -> int:
    bodies = [json.loads(r.body) for r in hook.requests]
    return sum(b["type"] == "end-of-call-report" and b["call_id"] == call_id for b in bodies)


def hooks_of(hook: Receiver, call_id: str, kind: str) -> list[dict[str, Any]]:
    """The call's webhooks of type ``kind`` the receiver took (signatures verified)."""
    bodies = [json.loads(r.body) for r in hook.requests]
    return [b for b in bodies if b["type"] == kind and b["call_id"] == call_id]


ECHO = "+31612345670"  # the lab's Echo(): the line stays up until someone hangs it up
LOST_CALLS = 3


async def up_calls(api: Api, count: int) -> list[str]:
    """``count`` calls to the lab's echo line placed through ``api``'s node, all answered."""
    call_ids = [await api.place(ECHO, SUPPORT_ID) for _ in range(count)]
    for call_id in call_ids:
        await api.wait(call_id, lambda c: c["status"] == "in-progress", 15)
    return call_ids


async def settled_once(
    http: aiohttp.ClientSession,
    lab: LabAsterisk,
    hook: Receiver,
    survivors: Sequence[Api],
    call_ids: Sequence[str],
    killed: float,
    before: set[str],
) -> dict[str, str]:
    """Every call of the killed node ended ``node-lost`` within ``SETTLED_WITHIN`` of
    ``killed``, as each survivor's API shows it; nothing the calls had (their legs, the far
    party's channels, bridges) left at the PBX but what it had ``before``; exactly one
    end-of-call report and one ``ended`` status update per call. The node that settled each."""
    settled: dict[str, str] = {}
    for call_id in call_ids:
        left = SETTLED_WITHIN - (time.monotonic() - killed)
        ended = await survivors[0].wait(call_id, lambda c: c["status"] in TERMINAL, left)
        assert (ended["status"], ended["end_reason"]) == ("ended", "node-lost"), ended
        assert ended["started_at"]
        assert ended["ended_at"]
        settled[call_id] = ended["node"]
        for other in survivors[1:]:  # every node tells the same
            seen = await other.call(call_id)
            assert (seen["status"], seen["end_reason"], seen["node"]) == (
                "ended",
                "node-lost",
                ended["node"],
            )
    assert time.monotonic() - killed < SETTLED_WITHIN
    async with asyncio.timeout(8):  # the PBX lists nothing of them, the far ends included
        while left_over := await lab_ids(http, lab) - before:
            await asyncio.sleep(0.1)
    assert not left_over
    async with asyncio.timeout(10):
        while not all(reports(hook, call_id) for call_id in call_ids):
            await asyncio.sleep(0.1)
    # Each survivor renews (and would claim) at least once more meanwhile.
    await asyncio.sleep(4)
    for call_id in call_ids:
        [report] = hooks_of(hook, call_id, "end-of-call-report")
        assert (report["data"]["status"], report["data"]["end_reason"]) == ("ended", "node-lost")
        ends = [
            update
            for update in hooks_of(hook, call_id, "status-update")
            if update["data"]["status"] in TERMINAL
        ]
        assert [e["data"]["end_reason"] for e in ends] == ["node-lost"]
    assert hook.rejected == 0
    return settled


@pytest.mark.timeout(150)
async def test_a_killed_nodes_calls_are_left_alone_by_a_starting_node_then_settled_by_it(
    lab: LabAsterisk, postgres_server: str, hook: Receiver, tmp_path: Path
) -> None:
    """Node a has three calls up; node b starts and leaves them alone; node a is killed and
    node b settles each once: hung up at the PBX, ended node-lost, one report each."""
    database = await fresh_database(postgres_server)
    ports, configs = two_nodes(tmp_path, database, lab, hook)
    async with aiohttp.ClientSession() as http:
        before = await lab_ids(http, lab)
        with node_process(configs["a"], tmp_path / "a.log") as a_process:
            a, call_id, answered = await answered_call(
                http, ports["a"], a_process, tmp_path / "a.log", database
            )
            assert answered["node"] == "a"
            call_ids = [call_id, *await up_calls(a, LOST_CALLS - 1)]
            assert await all_at_pbx(http, lab, call_ids)

            with node_process(configs["b"], tmp_path / "b.log") as b_process:
                b = Api(http, f"http://127.0.0.1:{ports['b']}", a.key)
                await wait_healthy(http, b.base, b_process, tmp_path / "b.log")
                # Node b has started (and recovered): node a's calls are up, at the PBX too.
                for call_id in call_ids:
                    seen = await b.call(call_id)
                    assert (seen["status"], seen["node"], seen["end_reason"]) == (
                        "in-progress",
                        "a",
                        None,
                    )
                assert await all_at_pbx(http, lab, call_ids)

                a_process.send_signal(signal.SIGKILL)
                a_process.wait(timeout=10)
                killed = time.monotonic()
                # The callers are still there: only a survivor hangs them up.
                assert await all_at_pbx(http, lab, call_ids)

                settled = await settled_once(http, lab, hook, [b], call_ids, killed, before)
                assert set(settled.values()) == {"b"}


@pytest.mark.timeout(120)
async def test_two_surviving_nodes_settle_each_call_of_a_killed_node_once(
    lab: LabAsterisk, postgres_server: str, hook: Receiver, tmp_path: Path
) -> None:
    """Nodes b and c survive node a, both renewing every second once its 3 s lease ran out:
    each of its calls is claimed by one of them, hung up once and reported once."""
    database = await fresh_database(postgres_server)
    ports, configs = some_nodes(
        ("a", "b", "c"), tmp_path, database, lab, hook, leases={"a": 3, "b": 3, "c": 3}
    )
    async with aiohttp.ClientSession() as http:
        before = await lab_ids(http, lab)
        with (
            node_process(configs["a"], tmp_path / "a.log") as a_process,
            node_process(configs["b"], tmp_path / "b.log") as b_process,
            node_process(configs["c"], tmp_path / "c.log") as c_process,
        ):
            a, call_id, _ = await answered_call(
                http, ports["a"], a_process, tmp_path / "a.log", database
            )
            call_ids = [call_id, *await up_calls(a, LOST_CALLS - 1)]
            survivors = []
            for name, process in (("b", b_process), ("c", c_process)):
                api = Api(http, f"http://127.0.0.1:{ports[name]}", a.key)
                await wait_healthy(http, api.base, process, tmp_path / f"{name}.log")
                survivors.append(api)
            for call_id in call_ids:
                assert (await survivors[1].call(call_id))["node"] == "a"

            a_process.send_signal(signal.SIGKILL)
            a_process.wait(timeout=10)
            killed = time.monotonic()
            settled = await settled_once(http, lab, hook, survivors, call_ids, killed, before)
            assert set(settled.values()) <= {"b", "c"}
            # Each survivor's log counts the calls it claimed: together, each call once.
            claims = "\n".join((tmp_path / f"{name}.log").read_text() for name in ("b", "c"))
            claimed = re.findall(r"node [bc]: (\d+) call\(s\) of a node that stopped", claims)
            assert sum(map(int, claimed)) == LOST_CALLS, claimed


@pytest.mark.timeout(90)
async def test_a_second_node_on_sqlite_is_refused_and_the_first_ones_call_stays_up(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'one.db'}"
    first_port, second_port = free_port(), free_port()
    first_config = node_config(
        tmp_path / "first.toml", node_id="first", database=database, port=first_port, lab=lab
    )
    second_config = node_config(  # started as `voicedock serve`: the real engines
        tmp_path / "second.toml",
        node_id="second",
        database=database,
        port=second_port,
        lab=None,
        speech="offline",
    )
    async with aiohttp.ClientSession() as http:
        with node_process(first_config, tmp_path / "first.log") as first_process:
            first, call_id, _ = await answered_call(
                http, first_port, first_process, tmp_path / "first.log", database
            )

            # The real command line, as an operator starts a second node by mistake.
            began = time.monotonic()
            refused = await asyncio.to_thread(
                subprocess.run,
                [
                    str(Path(sys.executable).with_name("voicedock")),
                    "serve",
                    "--config",
                    str(second_config),
                ],
                env=process_env(),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert refused.returncode == 2, refused.stderr[-3000:]
            assert (
                "voicedock: config: database.url: an SQLite database serves one voicedock "
                "node, and node 'first' is running on it"
            ) in refused.stderr
            assert "use PostgreSQL to run several nodes" in refused.stderr
            assert time.monotonic() - began < 20

            seen = await first.call(call_id)
            assert (seen["status"], seen["end_reason"]) == ("in-progress", None)
            assert call_id in await lab_ids(http, lab)


OK = {"success": True, "message": "Command sent successfully"}


async def control(api: Api, call_id: str, body: dict[str, Any]) -> tuple[int, Any]:
    """``POST /calls/{id}/control`` through ``api``'s node: (status, body)."""
    async with api.http.post(
        f"{api.base}/calls/{call_id}/control",
        json=body,
        headers={"Authorization": f"Bearer {api.key}"},
    ) as resp:
        return resp.status, await resp.json()


def said(call: dict[str, Any]) -> list[str]:
    """What the assistant said in the call, as its transcript holds it."""
    return [m["content"] for m in call["messages"] if m["role"] == "assistant"]


async def stream_events(api: Api, call_id: str, into: list[dict[str, Any]]) -> None:
    """The call's ``GET /calls/{id}/events`` stream through ``api``'s node, until it ends."""
    async with api.http.get(
        f"{api.base}/calls/{call_id}/events", headers={"Authorization": f"Bearer {api.key}"}
    ) as resp:
        assert resp.status == 200
        buffer = ""
        async for chunk in resp.content.iter_any():
            messages, buffer = sse_messages(buffer + chunk.decode())
            into.extend(messages)


@pytest.mark.timeout(150)
async def test_commands_sent_to_another_node_reach_the_calls_node_and_its_party(
    lab: LabAsterisk, postgres_server: str, hook: Receiver, tmp_path: Path
) -> None:
    """Node a places the call; ``say``, ``inject-context`` and ``end-call`` go to node b's
    REST API and are carried out by node a: its conversation says them, its LLM answers the
    injected context, the PBX hangs the call up; node b's events stream shows it all. Then
    node a is killed: a command to node b for a's other call says the node stopped, and the
    call ends node-lost (node b's own lease is long: the command, not a renewal, settles it)."""
    database = await fresh_database(postgres_server)
    ports, configs = two_nodes(tmp_path, database, lab, hook, leases={"a": 3, "b": 300})
    async with aiohttp.ClientSession() as http:
        with (
            node_process(configs["a"], tmp_path / "a.log") as a_process,
            contextlib.ExitStack() as stack,
        ):
            a, call_id, _ = await answered_call(
                http, ports["a"], a_process, tmp_path / "a.log", database
            )
            # Once node a serves and has placed its call.
            b_process = stack.enter_context(node_process(configs["b"], tmp_path / "b.log"))
            b = Api(http, f"http://127.0.0.1:{ports['b']}", a.key)
            await wait_healthy(http, b.base, b_process, tmp_path / "b.log")
            await b.wait(call_id, lambda c: said(c) == ["Hi!"], 15)  # greeted by node a
            streamed: list[dict[str, Any]] = []
            stream = asyncio.create_task(stream_events(b, call_id, streamed))
            try:
                assert await control(
                    b, call_id, {"type": "say", "content": "Your order ships"}
                ) == (
                    200,
                    OK,
                )
                await b.wait(call_id, lambda c: "Your order ships" in said(c), 15)
                injected = {
                    "type": "inject-context",
                    "content": "Name John",
                    "trigger_response": True,
                }
                assert await control(b, call_id, injected) == (200, OK)
                # The echo LLM on node a answers what it was given.
                answered = await b.wait(call_id, lambda c: any("John" in t for t in said(c)), 15)
                controls = [e["data"] for e in answered["events"] if e["type"] == "control"]
                assert [(c["type"], c["delivered_to"]) for c in controls] == [
                    ("say", "conversation"),
                    ("inject-context", "conversation"),
                ]

                assert await control(b, call_id, {"type": "end-call"}) == (200, OK)
                ended = await b.wait(call_id, lambda c: c["status"] in TERMINAL, 15)
                assert (ended["status"], ended["end_reason"]) == ("ended", "api-end-call")
                async with asyncio.timeout(10):  # the stream ends after the terminal status
                    await stream
            finally:
                stream.cancel()
            async with asyncio.timeout(5):  # hung up at the PBX
                while of_call(await lab_ids(http, lab), call_id):
                    await asyncio.sleep(0.1)
            async with asyncio.timeout(10):
                while not reports(hook, call_id):
                    await asyncio.sleep(0.1)
            # Node b's stream saw every event of node a's call, in order.
            stored = [e["type"] for e in (await b.call(call_id))["events"]]
            assert [m["data"]["type"] for m in streamed] == stored
            assert {"control", "transcript", "status"} <= set(stored)
            assert streamed[-1]["data"]["data"]["to"] == "ended"

            # A blind transfer through node b: node a's PBX connection hands the party to sales.
            recordings = set(lab.recordings_dir.glob("sales-*-rx.wav"))
            moved = await a.place(ANSWERS, SUPPORT_ID)
            await b.wait(moved, lambda c: c["status"] == "in-progress", 15)
            transfer = {"type": "transfer", "destination": "sales"}
            assert await control(b, moved, transfer) == (200, OK)
            done = await b.wait(moved, lambda c: c["status"] in TERMINAL, 20)
            assert (done["end_reason"], done["transferred_to"]) == ("transferred", "sales")
            async with asyncio.timeout(10):  # the party talks to sales now
                while not set(lab.recordings_dir.glob("sales-*-rx.wav")) - recordings:
                    await asyncio.sleep(0.1)
            await hang_up(http, lab, moved)

            # Node a dies with a call up; a command through node b settles it.
            second = await a.place(ANSWERS, SUPPORT_ID)
            await b.wait(second, lambda c: c["status"] == "in-progress", 15)
            a_process.send_signal(signal.SIGKILL)
            a_process.wait(timeout=10)
            await asyncio.sleep(3.5)  # node a's lease runs out
            status, body = await control(b, second, {"type": "say", "content": "Hello?"})
            assert (status, body) == (
                409,
                {
                    "error": "Call not active",
                    "message": "node 'a', which served the call, stopped (its lease expired): "
                    "the call has ended (end_reason node-lost)",
                },
            )
            lost = await b.call(second)
            assert (lost["status"], lost["end_reason"], lost["node"]) == ("ended", "node-lost", "b")
            assert not of_call(await lab_ids(http, lab), second)
            async with asyncio.timeout(10):
                while not reports(hook, second):
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1)
            assert (reports(hook, call_id), reports(hook, second)) == (1, 1)


CALLERS = [f"+316237315{n:02d}" for n in range(20)]


async def node_apps(http: aiohttp.ClientSession, lab: LabAsterisk) -> str:
    """The live nodes' applications the nodes published to the lab Asterisk."""
    async with http.get(
        f"{lab.ari_url}/asterisk/variable",
        params={"variable": "VOICEDOCK_APPS"},
        headers=ari_auth(lab),
    ) as resp:
        assert resp.status == 200
        return str((await resp.json())["value"])


async def calls_of(api: Api, callers: Sequence[str]) -> list[dict[str, Any]]:
    """The calls ``GET /calls`` lists from any of ``callers`` (all of them, so that a call
    answered twice shows)."""
    async with api.http.get(
        f"{api.base}/calls", headers={"Authorization": f"Bearer {api.key}"}
    ) as resp:
        assert resp.status == 200
        calls: list[dict[str, Any]] = (await resp.json())["calls"]
    return [c for c in calls if c["caller_phone"] in callers]


async def inbound_calls(
    http: aiohttp.ClientSession, api: Api, lab: LabAsterisk | LabFreeswitch, callers: list[str]
) -> dict[str, dict[str, Any]]:
    """The carrier calls ACME's number once from each of ``callers`` at once; once every call
    is in progress the callers hang up. Each caller's calls as the API lists them (all of
    them, so that a call answered twice shows), each as ``GET /calls/{id}`` shows it ended."""
    legs = await asyncio.gather(
        *(asyncio.to_thread(lab.originate_inbound, ACME_NUMBERS[0], caller=c) for c in callers)
    )

    async with asyncio.timeout(20):
        while sum(c["status"] == "in-progress" for c in await calls_of(api, callers)) < len(
            callers
        ):
            await asyncio.sleep(0.2)
    await asyncio.sleep(1)  # a second answer of the same call would be listed by now
    found = await calls_of(api, callers)
    for leg in legs:
        if isinstance(lab, LabAsterisk):
            await hang_up(http, lab, leg)
        else:
            await asyncio.to_thread(lab.api, f"uuid_kill {leg}")
    by_caller: dict[str, list[dict[str, Any]]] = {c: [] for c in callers}
    for call in found:
        by_caller[call["caller_phone"]].append(call)
    assert {c: len(calls) for c, calls in by_caller.items()} == dict.fromkeys(callers, 1)
    # Ended by the caller, on the node that answered it (``GET /calls/{id}`` names it).
    return {
        caller: await api.wait(str(calls[0]["id"]), lambda c: c["status"] in TERMINAL, 15)
        for caller, calls in by_caller.items()
    }


@contextlib.asynccontextmanager
async def serving_nodes(
    http: aiohttp.ClientSession,
    ports: dict[str, int],
    configs: dict[str, Path],
    database: str,
    tmp_path: Path,
) -> AsyncIterator[tuple[subprocess.Popen[bytes], str]]:
    """Nodes a and b serving, b started once a serves: node a's process and an API key of
    ACME. Both are stopped on exit."""
    with node_process(configs["a"], tmp_path / "a.log") as a_process:
        await wait_healthy(http, f"http://127.0.0.1:{ports['a']}", a_process, tmp_path / "a.log")
        with node_process(configs["b"], tmp_path / "b.log") as b_process:
            await wait_healthy(
                http, f"http://127.0.0.1:{ports['b']}", b_process, tmp_path / "b.log"
            )
            yield a_process, await acme_api_key(database)


@contextlib.asynccontextmanager
async def two_published_nodes(
    http: aiohttp.ClientSession,
    lab: LabAsterisk,
    postgres_server: str,
    hook: Receiver,
    tmp_path: Path,
) -> AsyncIterator[tuple[subprocess.Popen[bytes], Api]]:
    """Nodes a and b (3 s leases) on a fresh database, both applications published to the
    lab Asterisk: node a's process and node b's API. ``VOICEDOCK_APPS`` is emptied after, for
    later tests' nodes."""
    database = await fresh_database(postgres_server)
    ports, configs = two_nodes(tmp_path, database, lab, hook, leases={"a": 3, "b": 3})
    try:
        async with serving_nodes(http, ports, configs, database, tmp_path) as (a_process, key):
            async with asyncio.timeout(10):
                while await node_apps(http, lab) != "voicedock-a&voicedock-b":
                    await asyncio.sleep(0.1)
            yield a_process, Api(http, f"http://127.0.0.1:{ports['b']}", key)
    finally:
        await forget_node_apps(http, lab)


async def forget_node_apps(http: aiohttp.ClientSession, lab: LabAsterisk) -> None:
    """Empty ``VOICEDOCK_APPS`` at the lab Asterisk, for later tests' nodes."""
    async with http.post(
        f"{lab.ari_url}/asterisk/variable",
        params={"variable": "VOICEDOCK_APPS", "value": ""},
        headers=ari_auth(lab),
    ) as resp:
        assert resp.status == 204


@pytest.mark.timeout(180)
async def test_inbound_calls_while_two_nodes_run_are_each_answered_once(
    lab: LabAsterisk, postgres_server: str, hook: Receiver, tmp_path: Path
) -> None:
    """Both nodes publish their applications; batches of inbound calls (four at a time, the
    number's limit) are each answered by exactly one node, both nodes answering some. Node a
    is killed: at once, before its lease runs out, every inbound call is answered by node b;
    once the lease ran out node b has taken node a's application off the list."""
    async with (
        aiohttp.ClientSession() as http,
        two_published_nodes(http, lab, postgres_server, hook, tmp_path) as (a_process, b),
    ):
        served: list[str] = []
        for batch in range(3):
            callers = CALLERS[4 * batch : 4 * batch + 4]
            calls = await inbound_calls(http, b, lab, callers)
            served += [call["node"] for call in calls.values()]
            assert all(call["direction"] == "inbound" for call in calls.values())
        assert set(served) == {"a", "b"}, served  # 12 calls, each node some

        a_process.send_signal(signal.SIGKILL)
        a_process.wait(timeout=10)
        assert "voicedock-a" in await node_apps(http, lab)  # its lease is alive
        calls = await inbound_calls(http, b, lab, CALLERS[12:16])
        assert [call["node"] for call in calls.values()] == ["b"] * 4

        async with asyncio.timeout(15):  # a's lease ran out: b drops its application
            while await node_apps(http, lab) != "voicedock-b":
                await asyncio.sleep(0.2)
        calls = await inbound_calls(http, b, lab, CALLERS[16:20])
        assert [call["node"] for call in calls.values()] == ["b"] * 4

    # The nodes' logs name the callers masked only; node b's access log shows each inbound call
    # the test read through its API (``GET /calls/{id}``: the id carries the caller's number).
    logged = "\n".join((tmp_path / f"{name}.log").read_text() for name in ("a", "b"))
    assert "GET /calls/call-_+316***" in logged
    assert [caller for caller in CALLERS if caller in logged] == []


@pytest.mark.timeout(150)
async def test_callers_given_to_a_stalled_node_are_answered_by_the_survivor(
    lab: LabAsterisk, postgres_server: str, hook: Receiver, tmp_path: Path
) -> None:
    """Node a stalls (``SIGSTOP``: its websocket stays open, as when its host vanishes, so
    Asterisk keeps giving it callers, who wait unanswered). Once a's lease ran out node b takes
    a's application off the list and hands a's waiting callers back to the dialplan: every
    caller is answered by node b, once."""
    async with (
        aiohttp.ClientSession() as http,
        two_published_nodes(http, lab, postgres_server, hook, tmp_path) as (a_process, b),
    ):
        a_process.send_signal(signal.SIGSTOP)
        try:
            calls = await inbound_calls(http, b, lab, CALLERS[:4])
            assert [call["node"] for call in calls.values()] == ["b"] * 4
            async with asyncio.timeout(15):  # a's lease ran out: off the list
                while await node_apps(http, lab) != "voicedock-b":
                    await asyncio.sleep(0.2)
        finally:
            a_process.send_signal(signal.SIGKILL)
            a_process.wait(timeout=10)


async def waiting_in(http: aiohttp.ClientSession, lab: LabAsterisk, app: str) -> int:
    """How many callers wait unanswered in ``app``'s Stasis at the lab Asterisk."""
    async with http.get(f"{lab.ari_url}/channels", headers=ari_auth(lab)) as resp:
        assert resp.status == 200
        channels = await resp.json()
    return sum(
        c["state"] != "Up"
        and c["dialplan"]["app_name"] == "Stasis"
        and c["dialplan"]["app_data"].startswith(f"{app},inbound,")
        for c in channels
    )


@pytest.mark.timeout(150)
async def test_callers_left_waiting_by_a_killed_service_are_answered_when_it_starts_again(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    """The only node (SQLite) stalls (``SIGSTOP``: Asterisk keeps giving it the carrier's
    callers, who wait unanswered in its application) and is killed. Started again under the same
    id, it hands them back to the dialplan and answers each, once: none stays on a silent
    line."""
    database = f"sqlite:///{tmp_path / 'one.db'}"
    port = free_port()
    config = node_config(
        tmp_path / "one.toml", node_id="one", database=database, port=port, lab=lab
    )
    callers = CALLERS[:3]
    async with aiohttp.ClientSession() as http:
        with node_process(config, tmp_path / "first.log") as first:
            await wait_healthy(http, f"http://127.0.0.1:{port}", first, tmp_path / "first.log")
            first.send_signal(signal.SIGSTOP)
            try:
                legs = await asyncio.gather(
                    *(
                        asyncio.to_thread(lab.originate_inbound, ACME_NUMBERS[0], caller=c)
                        for c in callers
                    )
                )
                async with asyncio.timeout(15):
                    while await waiting_in(http, lab, lab.settings.app_name) < len(callers):
                        await asyncio.sleep(0.2)
            finally:
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
        await asyncio.sleep(2)  # still waiting: nobody answers them
        assert await waiting_in(http, lab, lab.settings.app_name) == len(callers)

        with node_process(config, tmp_path / "again.log") as again:
            await wait_healthy(http, f"http://127.0.0.1:{port}", again, tmp_path / "again.log")
            api = Api(http, f"http://127.0.0.1:{port}", await acme_api_key(database))
            try:
                async with asyncio.timeout(20):
                    while sum(
                        c["status"] == "in-progress" for c in await calls_of(api, callers)
                    ) < len(callers):
                        await asyncio.sleep(0.2)
                await asyncio.sleep(1)  # a second answer of the same caller would show by now
                calls = await calls_of(api, callers)
                assert sorted(c["caller_phone"] for c in calls) == sorted(callers)
                assert await waiting_in(http, lab, lab.settings.app_name) == 0
            finally:
                for leg in legs:
                    await hang_up(http, lab, leg)
            for call in calls:
                ended = await api.wait(str(call["id"]), lambda c: c["status"] in TERMINAL, 15)
                assert ended["end_reason"] == "remote-hangup", ended  # the caller hung up


@pytest.mark.freeswitch_lab
@pytest.mark.timeout(180)
async def test_inbound_calls_on_freeswitch_while_two_nodes_run_are_each_answered_once(
    freeswitch_lab: LabFreeswitch, postgres_server: str, tmp_path: Path
) -> None:
    """Both nodes hear every parked inbound call on FreeSWITCH; each claims it before
    answering (mod_hash), so each call is answered by exactly one of them. Node a is killed:
    every inbound call is answered by node b."""
    database = await fresh_database(postgres_server)
    ports = {"a": free_port(), "b": free_port()}
    configs = {
        name: node_config(
            tmp_path / f"{name}.toml",
            node_id=name,
            database=database,
            port=ports[name],
            lab=None,
            freeswitch=freeswitch_lab,
        )
        for name in ports
    }
    async with (
        aiohttp.ClientSession() as http,
        serving_nodes(http, ports, configs, database, tmp_path) as (a_process, key),
    ):
        b = Api(http, f"http://127.0.0.1:{ports['b']}", key)

        served: list[str] = []
        for batch in range(3):
            calls = await inbound_calls(http, b, freeswitch_lab, CALLERS[4 * batch : 4 * batch + 4])
            served += [call["node"] for call in calls.values()]
        assert set(served) <= {"a", "b"}, served

        a_process.send_signal(signal.SIGKILL)
        a_process.wait(timeout=10)
        calls = await inbound_calls(http, b, freeswitch_lab, CALLERS[12:16])
        assert [call["node"] for call in calls.values()] == ["b"] * 4
