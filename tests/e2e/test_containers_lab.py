"""Calls on the lab Asterisk leave nothing behind in the nodes' long-lived objects.

A node serves calls for days: every dict, set, list or deque it keeps (the service, the PBX
adapter and its ARI client, the engine, the runner, the webhooks, the node's commands, the
API's parts, the module-level caches, the locals of its long-lived tasks) must shrink back when
a call is over, or be bounded. Whole calls the way a user and the soak make them (an outbound
call ended with ``end-call`` after a ``say``, one the party hangs up, a blind transfer, an
inbound caller who hangs up), a few rounds first, then more: no container is larger than it was
after the first rounds (``fakes.containers``). On one node (SQLite), and on two sharing
PostgreSQL, each call's commands sent to the other node's API, the webhooks delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from e2e.conftest import LiveService, serve, service_settings
from e2e.test_calls_e2e import TERMINAL, place, wait_status
from fakes.containers import app_roots, container_sizes, grown
from fakes.world import ACME
from pbx.freeswitch.live_service import speech_fakes
from pbx.lab_calls import ANSWERS
from pg_server import fresh_database
from soak.harness import soak_caller
from voicedock.config import Settings, WebhookEndpointSettings
from voicedock.domain.webhooks import generate_secret
from voicedock_lab.server import LabAsterisk
from webhooks.receiver import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk, pytest.mark.timeout(240)]

LEAVER = "+31612345694"  # the lab's leaving soak party: hangs up after LAB_SOAK_MIN..MAX s
WARM_UP_ROUNDS = 2
MORE_ROUNDS = 6
_inbound = itertools.count()


def node_settings(lab: LabAsterisk, database: str, speech: str, node_id: str = "") -> Settings:
    settings = service_settings(lab, Path("unused.db"), "ari")
    settings.database.url = database
    if node_id:
        settings.node.id = node_id
    settings.speech.stt = settings.speech.llm = settings.speech.tts = speech
    settings.policy.internal_targets = ["sales"]
    for number in settings.numbers:
        number.max_concurrent_calls = 10
    return settings


@contextlib.asynccontextmanager
async def nodes(*every: Settings) -> AsyncIterator[list[LiveService]]:
    """The nodes served, the lab's leaving party quick to leave."""
    async with contextlib.AsyncExitStack() as stack:
        running: list[LiveService] = []
        for settings in every:
            node = await serve(settings)
            stack.push_async_callback(node.client.close)
            running.append(node)
        for variable, value in (("LAB_SOAK_MIN", "1"), ("LAB_SOAK_MAX", "2")):
            params = {"variable": variable, "value": value}
            await running[0].pbx.ari.request("POST", "/asterisk/variable", params=params)
        yield running


async def control(
    live: LiveService, call_id: str, body: dict[str, str], statuses: tuple[int, ...] = (200,)
) -> None:
    resp = await live.client.post(f"/calls/{call_id}/control", json=body, headers=live.auth())
    assert resp.status in statuses, await resp.text()


async def ended_by_us(placer: LiveService, other: LiveService) -> None:
    call_id = await place(placer, ANSWERS)
    await wait_status(placer, call_id, ("in-progress",), within=30)
    await control(other, call_id, {"type": "say", "content": "One moment please."})
    await asyncio.sleep(0.5)
    await control(other, call_id, {"type": "end-call"})
    await wait_status(placer, call_id, TERMINAL, within=30)


async def hung_up_by_the_party(placer: LiveService, other: LiveService) -> None:
    call_id = await place(placer, LEAVER)
    # The party leaves 1-2 s after answering: a loaded machine's polling may see it gone.
    await wait_status(placer, call_id, ("in-progress", *TERMINAL), within=30)
    say = {"type": "say", "content": "One moment please."}
    await control(other, call_id, say, (200, 409))  # 409: the party left already
    await wait_status(placer, call_id, TERMINAL, within=30)


async def transferred(placer: LiveService, other: LiveService) -> None:
    call_id = await place(placer, ANSWERS)
    await wait_status(placer, call_id, ("in-progress",), within=30)
    await control(other, call_id, {"type": "transfer", "destination": "sales"})
    await wait_status(placer, call_id, TERMINAL, within=30)
    await placer.pbx.ari.hangup_channel(call_id)  # the caller is with sales now, not with us


async def inbound(placer: LiveService, other: LiveService) -> None:
    """The lab's carrier calls ACME's number (the soak's caller); it hangs up after 2 s."""
    channel = f"containers-in-{next(_inbound)}"
    params, body = soak_caller(channel, 2)
    await placer.pbx.ari.request("POST", "/channels", params=params, body=body)
    async with asyncio.timeout(30):
        while channel in {c.id for c in await placer.pbx.ari.list_channels()}:
            await asyncio.sleep(0.2)


async def round_of_calls(running: Sequence[LiveService], turn: int) -> None:
    """Each kind of call once, placed through one node and controlled through the other."""
    async with asyncio.TaskGroup() as group:
        for n, kind in enumerate((ended_by_us, hung_up_by_the_party, transferred, inbound)):
            placer = running[(turn + n) % len(running)]
            other = running[(turn + n + 1) % len(running)]
            group.create_task(kind(placer, other))


async def settled(running: Sequence[LiveService]) -> None:
    """Every call of the rounds is over on every side: no channel at the PBX, none served."""
    ari = running[0].pbx.ari
    async with asyncio.timeout(60):  # a loaded machine's last hang-ups
        while await ari.list_channels() or any(n.service.runner.served.every() for n in running):
            await asyncio.sleep(0.2)


async def schema_workers_up(running: Sequence[LiveService]) -> None:
    """Every node's schema workers are up: they start at the lowest priority, on a loaded
    machine after the warm-up rounds, and a pool filled to its size since is not a leak."""
    pools = [node.service.runner.speech.schema_checks for node in running]
    async with asyncio.timeout(60):
        while any(len(pool.worker_pids()) < pool.workers for pool in pools):
            await asyncio.sleep(0.2)


def sizes_now(running: Sequence[LiveService]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for n, node in enumerate(running):
        roots = app_roots(node.service, node.client.server.app)
        sizes |= {f"node{n}:{path}": size for path, size in container_sizes(roots).items()}
    return sizes


async def no_container_grows(running: Sequence[LiveService]) -> None:
    """After the warm-up rounds and more, no container is larger. The last events, hang-ups
    and webhooks of a round come after its calls ended, later on a loaded machine: the sizes
    are read again until none is larger (a leak never shrinks back) or 30 s have passed."""
    turns = itertools.count()
    for _ in range(WARM_UP_ROUNDS):
        await round_of_calls(running, next(turns))
    await settled(running)
    await schema_workers_up(running)
    await asyncio.sleep(1.5)  # the warm-up's last events, hang-ups and webhooks
    before = sizes_now(running)
    for _ in range(MORE_ROUNDS):
        await round_of_calls(running, next(turns))
    await settled(running)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while (larger := grown(before, sizes_now(running))) and loop.time() < deadline:
        await asyncio.sleep(0.5)
    assert larger == {}


async def test_calls_on_one_node_leave_no_container_larger(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    async with speech_fakes() as (speech, _):
        settings = node_settings(lab, f"sqlite:///{tmp_path / 'e2e.db'}", speech)
        async with nodes(settings) as running:
            await no_container_grows(running)


@pytest.mark.postgres
async def test_calls_on_two_nodes_leave_no_container_larger(
    lab: LabAsterisk, postgres_server: str
) -> None:
    hook = Receiver(generate_secret())
    await hook.start()
    try:
        async with speech_fakes() as (speech, _):
            database = await fresh_database(postgres_server)
            every = [node_settings(lab, database, speech, node_id) for node_id in ("a", "b")]
            for settings in every:
                settings.egress.allow_loopback = True
                settings.webhooks.endpoints = [
                    WebhookEndpointSettings("crm", ACME, hook.url, hook.secret)
                ]
            async with nodes(*every) as running:
                await no_container_grows(running)
        assert hook.accepted
    finally:
        await hook.stop()
