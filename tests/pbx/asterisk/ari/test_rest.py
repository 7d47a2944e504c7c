"""ARI's REST transport against a local HTTP server: a burst of requests shares a bounded
number of connections (each is one of Asterisk's HTTP sessions, which the calls' media
websockets need too), dialed a few at a time (Asterisk's HTTP server listens with a backlog
of 10)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from voicedock.config import AsteriskSettings
from voicedock.pbx.asterisk.ari.rest import ARI_CONNECTIONS, HTTP_CONNECTS_AT_ONCE, AriRest

pytestmark = pytest.mark.unit


async def test_a_burst_of_requests_shares_a_bounded_number_of_connections() -> None:
    in_flight = 0
    most = 0
    peers: set[object] = set()

    async def bridge(request: web.Request) -> web.Response:
        nonlocal in_flight, most
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)  # Asterisk busy with a hundred calls' set-up
        in_flight -= 1
        return web.json_response({"id": request.match_info["id"]})

    app = web.Application()
    app.router.add_post("/ari/bridges/{id}", bridge)
    async with TestServer(app, host="127.0.0.1") as server:
        rest = AriRest(AsteriskSettings(ari_url=str(server.make_url("/ari"))))
        try:
            calls = 100
            answers = await asyncio.gather(
                *(rest.request("POST", f"/bridges/b{n}") for n in range(calls))
            )
        finally:
            await rest.aclose()
    assert answers == [{"id": f"b{n}"} for n in range(calls)]  # every one answered
    assert most == len(peers) == ARI_CONNECTIONS  # the bound used, never passed


async def test_connections_are_dialed_a_few_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    dialing = most = 0
    dial = aiohttp.TCPConnector._create_connection

    async def slow_dial(self: aiohttp.TCPConnector, *args: Any) -> Any:
        nonlocal dialing, most
        dialing += 1
        most = max(most, dialing)
        await asyncio.sleep(0.02)  # a SYN on its way
        try:
            return await dial(self, *args)
        finally:
            dialing -= 1

    monkeypatch.setattr(aiohttp.TCPConnector, "_create_connection", slow_dial)

    async def answer(_: web.Request) -> web.Response:
        await asyncio.sleep(0.05)
        return web.json_response([])

    app = web.Application()
    app.router.add_get("/ari/channels", answer)
    async with TestServer(app, host="127.0.0.1") as server:
        rest = AriRest(AsteriskSettings(ari_url=str(server.make_url("/ari"))))
        try:
            await asyncio.gather(*(rest.request("GET", "/channels") for _ in range(40)))
        finally:
            await rest.aclose()
    assert most == HTTP_CONNECTS_AT_ONCE
