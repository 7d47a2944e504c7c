"""ARI's REST transport against a local HTTP server: a burst of requests shares a bounded
number of connections (each is one of Asterisk's HTTP sessions, which the calls' media
websockets need too)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from voicedock.config import AsteriskSettings
from voicedock.pbx.asterisk.ari.rest import ARI_CONNECTIONS, AriRest

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
