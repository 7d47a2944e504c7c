"""Client mode: Asterisk dials our aiohttp handler; connections are matched to expected calls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from voicedock.calls.transfers.agent import AgentDialogue
from voicedock.config import AsteriskSettings
from voicedock.errors import PbxError
from voicedock.media.errors import MediaStartTimeout
from voicedock.pbx.asterisk.media.acceptor import MediaAcceptor
from voicedock.pbx.asterisk.node_apps import NodeApps
from voicedock.pbx.asterisk.pbx import AsteriskPbx
from voicedock.pbx.asterisk.servers import several_asterisks
from voicedock.pbx.several import SeveralPbxs

pytestmark = pytest.mark.unit


def media_start(call: str | None, token: str | None = None) -> str:
    """Asterisk's MEDIA_START, with the channel variables voicedock set on the leg."""
    variables = {"MEDIA_WEBSOCKET_CONNECTION_ID": "voicedock_media"}
    if call is not None:
        variables["VOICEDOCK_CALL"] = call
    if token is not None:
        variables["VOICEDOCK_MEDIA_TOKEN"] = token
    return json.dumps(
        {
            "event": "MEDIA_START",
            "connection_id": "voicedock_media",
            "channel": "WebSocket/voicedock_media/0x556af41f7ec0",
            "channel_id": "smoke-1795247101.11",
            "format": "slin16",
            "optimal_frame_size": 640,
            "ptime": 20,
            "channel_variables": variables,
        }
    )


@pytest.fixture
async def server() -> AsyncIterator[tuple[MediaAcceptor, str]]:
    acceptor = MediaAcceptor(start_timeout=1.0, claim_timeout=1.0)
    app = web.Application()
    app.router.add_get("/media", acceptor.handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield acceptor, f"ws://127.0.0.1:{port}/media"
    await runner.cleanup()


async def test_connection_is_matched_by_channel_variable(
    server: tuple[MediaAcceptor, str],
) -> None:
    acceptor, url = server
    pending = acceptor.expect("cslin16j47101")
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, protocols=("media",)) as asterisk,
    ):
        assert asterisk.protocol == "media"
        await asterisk.send_str(media_start("cslin16j47101", pending.token))
        async with await pending.session(wait=2) as media:
            assert media.format.name == "slin16"
            assert media.frame_bytes == 640
            await asterisk.send_bytes(b"\x01\x00" * 320)
            frame = await asyncio.wait_for(anext(media.inbound_audio()), 2)
            assert frame == b"\x01\x00" * 320
            message = await asyncio.wait_for(asterisk.receive(), 2)
            data = message.data  # slin16 silence from our pacer: whole frames, written ahead
            assert len(data) >= 640
            assert len(data) % 640 == 0
            assert set(data) == {0}
        closing = await asyncio.wait_for(asterisk.receive(), 2)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def refused(url: str, start: str) -> int | None:
    """Connect, send ``start``: the close code voicedock answered with."""
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, protocols=("media",)) as stranger,
    ):
        await stranger.send_str(start)
        message = await asyncio.wait_for(stranger.receive(), 2)
        assert message.type is aiohttp.WSMsgType.CLOSE
        return stranger.close_code


async def test_a_connection_without_the_calls_token_is_refused_and_the_call_still_waits(
    server: tuple[MediaAcceptor, str],
) -> None:
    """Naming a pending call is not enough: without its token (or with another), in the
    query string as older setups sent it, or with another call's token, the connection is
    closed and the call goes on waiting for Asterisk's."""
    acceptor, url = server
    pending = acceptor.expect("abc")
    other = acceptor.expect("other")
    assert pending.token != other.token
    assert await refused(url, media_start("abc")) == 1008
    assert await refused(url, media_start("abc", "x" * len(pending.token))) == 1008
    assert await refused(url, media_start("abc", other.token)) == 1008
    assert await refused(url + "?call=abc", media_start(None)) == 1008
    assert acceptor.refused == 4
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, protocols=("media",)) as asterisk,
    ):
        await asterisk.send_str(media_start("abc", pending.token))
        async with await pending.session(wait=2) as media:
            assert media.started.channel_id == "smoke-1795247101.11"
    other.cancel()


async def test_unexpected_call_is_refused(server: tuple[MediaAcceptor, str]) -> None:
    acceptor, url = server
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, protocols=("media",)) as asterisk,
    ):
        await asterisk.send_str(media_start("nobody-expects-me"))
        message = await asyncio.wait_for(asterisk.receive(), 2)
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert asterisk.close_code == 1008
    assert acceptor.refused == 1


async def test_waiting_for_a_connection_that_never_comes_times_out(
    server: tuple[MediaAcceptor, str],
) -> None:
    acceptor, _ = server
    pending = acceptor.expect("late")
    with pytest.raises(MediaStartTimeout):
        await pending.session(wait=0.1)
    acceptor.expect("late")  # the registration was released and can be made again


async def test_the_adapter_makes_its_acceptor_in_client_mode_only() -> None:
    assert AsteriskPbx(AsteriskSettings()).media_endpoint() is None  # server mode: we dial
    client_mode = AsteriskPbx(AsteriskSettings(media_connection="client"))
    assert isinstance(client_mode.media_endpoint(), MediaAcceptor)
    assert client_mode.media_endpoint() is client_mode.media_endpoint()


async def test_several_servers_share_one_acceptor_behind_the_one_media_route() -> None:
    servers = [AsteriskSettings(name=name, media_connection="client") for name in ("east", "west")]
    several = several_asterisks(
        servers, AgentDialogue, lambda server: NodeApps(server.app, "node-1", several_nodes=False)
    )
    endpoint = several.media_endpoint()
    assert isinstance(endpoint, MediaAcceptor)
    for pbx in several.servers.values():
        assert isinstance(pbx, AsteriskPbx)
        assert pbx.media_endpoint() is endpoint
    apart = SeveralPbxs({server.name: AsteriskPbx(server) for server in servers})
    with pytest.raises(PbxError):
        apart.media_endpoint()  # two acceptors: /media could serve only one of them
