"""A worker of ``voicedock serve --workers N`` and the machine's other workers, each reached on
its own port (``api/machine.py``): ``GET /health`` on the shared API port answers for the
machine with each worker listed (one down, one draining), on the worker's own port for itself;
a live listen for another worker's call is relayed to that worker both ways, its refusals
as it gave them, and a worker that does not answer is a 503."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from fakes.pbx import FakePbx
from fakes.world import make_settings
from process_helpers import free_ports
from voicedock.api.app import create_app
from voicedock.api.error_responses import errors
from voicedock.api.machine import MACHINE, Machine
from voicedock.api.models.health import Health, WorkerHealth
from voicedock.api.routes.health import machine_health
from voicedock.config import Settings
from voicedock.config.workers import WorkerPlace
from voicedock.service import Service

pytestmark = pytest.mark.unit


@asynccontextmanager
async def server_on(port: int, routes: list[web.RouteDef]) -> AsyncIterator[None]:
    app = web.Application(middlewares=[errors])  # errors answered as the API answers them
    app.add_routes(routes)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield
    finally:
        await runner.cleanup()


def health_of(status: str, *, draining: bool = False) -> web.RouteDef:
    async def health(_: web.Request) -> web.Response:
        body = {
            "status": status,
            "can_place_calls": status == "ok",
            "draining": draining,
            "database": {"status": "up"},
            "pbx": {"kind": "fake", "status": "up", "links": {}},
            "providers": [],
        }
        return web.json_response(body, status=200 if status == "ok" else 503)

    return web.get("/health", health)


@asynccontextmanager
async def worker_one(
    tmp_path: Path, shared: int, count: int, port: int | None = None
) -> AsyncIterator[aiohttp.ClientSession]:
    """Worker 1 of ``count`` of a machine whose API port is ``shared`` (the real app and
    service, a FakePbx), served on ``port`` (default: the shared one), and a client of it."""
    settings: Settings = make_settings(f"sqlite:///{tmp_path / 'w1.db'}")
    settings.server.port = shared
    settings.node.id = "edge"
    app = create_app(settings, lambda: Service.open(settings, FakePbx()))
    machine = app[MACHINE] = Machine(WorkerPlace.of(settings, 1, count))
    app.on_cleanup.append(lambda _app: machine.aclose())
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port or shared).start()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port or shared}") as http:
            yield http
    finally:
        await runner.cleanup()


async def test_health_on_the_shared_port_is_the_machines(tmp_path: Path) -> None:
    shared = free_ports(4)
    async with (
        server_on(shared + 2, [health_of("draining", draining=True)]),  # worker 2
        worker_one(tmp_path, shared, 3) as http,  # worker 3 is down
        http.get("/health") as resp,
    ):
        assert resp.status == 200
        body = await resp.json()
    assert (body["status"], body["can_place_calls"], body["draining"]) == (
        "degraded",
        True,
        False,
    )
    assert body["workers"] == [
        {"node": "edge-w1", "status": "ok", "can_place_calls": True, "draining": False},
        {"node": "edge-w2", "status": "draining", "can_place_calls": False, "draining": True},
        {"node": "edge-w3", "status": "down", "can_place_calls": False, "draining": False},
    ]


async def test_health_on_a_workers_own_port_is_its_own(tmp_path: Path) -> None:
    shared = free_ports(3)
    async with (
        worker_one(tmp_path, shared, 2, port=shared + 1) as http,
        http.get("/health") as resp,
    ):
        assert resp.status == 200
        body = await resp.json()
    assert body["status"] == "ok"
    assert "workers" not in body


def worker(node: str, status: str, *, can: bool = False, draining: bool = False) -> WorkerHealth:
    return WorkerHealth(node=node, status=status, can_place_calls=can, draining=draining)


OWN = Health(
    status="draining",
    can_place_calls=False,
    draining=True,
    database={"status": "up"},
    pbx={"kind": "fake", "status": "up", "links": {}},
    providers=[],
)


@pytest.mark.parametrize(
    ("others", "status", "can", "draining"),
    [
        (
            [worker("e-w2", "draining", draining=True), worker("e-w3", "down")],
            "draining",
            False,
            True,
        ),
        ([worker("e-w2", "ok", can=True)], "degraded", True, False),
        ([worker("e-w2", "unavailable")], "degraded", False, False),
    ],
)
def test_the_machines_status_from_its_workers(
    others: list[WorkerHealth], status: str, can: bool, draining: bool
) -> None:
    """Draining while every worker that answers drains (a machine told SIGTERM, one worker
    restarting); degraded while one serves; 503 degraded when none can place calls."""
    machine = machine_health(OWN, "e-w1", others)
    assert (machine.status, machine.can_place_calls, machine.draining) == (status, can, draining)
    assert [w.node for w in machine.workers] == ["e-w1", *[w.node for w in others]]


@asynccontextmanager
async def relaying(owner_port: int) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    """A worker relaying ``/calls/{id}/listen`` to ``owner_port`` (``Machine``), its client."""
    place = WorkerPlace("edge", 1, 2, "127.0.0.1", owner_port - 2)  # worker 2: owner_port
    machine = Machine(place)
    url = machine.url_of("edge-w2", "/calls/c1/listen")
    assert url == f"http://127.0.0.1:{owner_port}/calls/c1/listen"

    async def listen(request: web.Request) -> web.StreamResponse:
        return await machine.relay_websocket(request, url, heartbeat=15.0, max_msg_size=4096)

    port = free_ports(1)
    try:
        async with (
            server_on(port, [web.get("/calls/{id}/listen", listen)]),
            aiohttp.ClientSession() as http,
        ):
            yield http, f"http://127.0.0.1:{port}"
    finally:
        await machine.aclose()


async def test_a_listen_is_relayed_to_the_worker_serving_the_call() -> None:
    seen: dict[str, Any] = {}
    said: list[str] = []

    async def owner(request: web.Request) -> web.StreamResponse:
        seen.update(request.headers)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "hello", "node": "edge-w2"})
        for n in range(3):
            await ws.send_bytes(bytes([n]) * 8)
        message = await ws.receive()  # what the client sends reaches it
        said.append(message.data)
        await ws.send_json({"type": "end", "reason": "ended"})
        await ws.close()
        return ws

    owner_port = free_ports(1)
    headers = {"Authorization": "Bearer vd_key", "Origin": "https://console.example"}
    async with (
        server_on(owner_port, [web.get("/calls/c1/listen", owner)]),
        relaying(owner_port) as (http, base),
        http.ws_connect(f"{base}/calls/c1/listen", headers=headers) as ws,
    ):
        hello = await ws.receive_json()
        frames = [(await ws.receive_bytes()) for _ in range(3)]
        await ws.send_str("ping")
        end = await ws.receive_json()
        closing = await ws.receive()
    assert hello == {"type": "hello", "node": "edge-w2"}
    assert frames == [bytes([n]) * 8 for n in range(3)]
    assert end == {"type": "end", "reason": "ended"}
    assert closing.type is WSMsgType.CLOSE
    assert ws.close_code == 1000
    assert said == ["ping"]
    assert seen["Authorization"] == "Bearer vd_key"
    assert seen["Origin"] == "https://console.example"
    assert seen["Host"] == base.removeprefix("http://")  # the host the client asked


async def test_the_serving_workers_refusal_is_answered_as_it_gave_it() -> None:
    async def owner(_: web.Request) -> web.Response:
        body = {"error": "Too many listeners", "message": "this call has 2 listeners, its most"}
        return web.json_response(body, status=429, headers={"Retry-After": "5"})

    owner_port = free_ports(1)
    async with (
        server_on(owner_port, [web.get("/calls/c1/listen", owner)]),
        relaying(owner_port) as (http, base),
    ):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{base}/calls/c1/listen")
        assert refused.value.status == 429
        async with http.get(f"{base}/calls/c1/listen") as resp:  # a client reading it
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "5"
            assert json.loads(await resp.text())["error"] == "Too many listeners"


async def test_a_worker_that_does_not_answer_is_a_503() -> None:
    owner_port = free_ports(1)  # nothing listens there: the worker is restarting
    async with (
        relaying(owner_port) as (http, base),
        http.get(f"{base}/calls/c1/listen") as resp,
    ):
        assert resp.status == 503
        assert (await resp.json())["error"] == "Node unavailable"
