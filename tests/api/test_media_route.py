"""``/media``: the client-mode media endpoint of the web app (Asterisk dials voicedock).

Anyone who can reach the port can open a websocket there: until a connection shows a waiting
call's token it is a stranger, and strangers are few (a cap on the node, the next one refused
at once), brief (closed unless a MEDIA_START comes first and at once) and small (a few KiB
before the token). The acceptor is the one the node builds in client mode, as shipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from api.conftest import Api
from calls.test_runner import until
from voicedock.config import AsteriskSettings
from voicedock.pbx.asterisk.media.acceptor import (
    HANDSHAKE_BYTES,
    MAX_UNAUTHENTICATED,
    MediaAcceptor,
)
from voicedock.pbx.asterisk.pbx import AsteriskPbx

pytestmark = pytest.mark.unit


def start(call: str, token: str = "") -> str:
    """Asterisk's MEDIA_START (JSON control format) naming ``call`` and presenting ``token``."""
    return json.dumps(
        {
            "event": "MEDIA_START",
            "connection_id": "voicedock_media",
            "channel": "WebSocket/voicedock_media/0x1",
            "channel_id": "media-1",
            "format": "ulaw",
            "optimal_frame_size": 160,
            "ptime": 20,
            "channel_variables": {"VOICEDOCK_CALL": call, "VOICEDOCK_MEDIA_TOKEN": token},
        }
    )


@pytest.fixture
def client_mode(api: Api) -> MediaAcceptor:
    """The node's /media as in client media mode (``media_connection = "client"``)."""
    acceptor = AsteriskPbx(AsteriskSettings(media_connection="client")).media_endpoint()
    assert isinstance(acceptor, MediaAcceptor)
    api.service.media_acceptor = acceptor
    return acceptor


async def closed_by_server(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """Wait for the server to close ``ws`` (nothing else may come first); its close code."""
    async with asyncio.timeout(10):
        message = await ws.receive()
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
    return ws.close_code


async def test_media_is_404_without_client_mode_and_needs_no_api_key(api: Api) -> None:
    response = await api.client.get("/media")
    assert response.status == 404


async def test_media_takes_the_expected_call_and_refuses_strangers(api: Api) -> None:
    acceptor = MediaAcceptor(start_timeout=1.0, claim_timeout=1.0)
    api.service.media_acceptor = acceptor
    stranger = await api.client.ws_connect("/media", protocols=("media",))
    await stranger.send_str(start("nobody-expects-this"))
    message = await stranger.receive()
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert stranger.close_code == 1008
    await stranger.close()

    pending = acceptor.expect("call-1")
    forged = await api.client.ws_connect("/media", protocols=("media",))
    await forged.send_str(start("call-1"))  # names the waiting call, without its token
    message = await forged.receive()
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert forged.close_code == 1008
    await forged.close()

    ws = await api.client.ws_connect("/media", protocols=("media",))
    await ws.send_str(start("call-1", pending.token))
    session = await pending.session(wait=2.0)
    async with session as media:
        assert media.format.name == "ulaw"
    await ws.close()


@contextlib.asynccontextmanager
async def strangers(api: Api, count: int) -> AsyncIterator[list[aiohttp.ClientWebSocketResponse]]:
    """``count`` websockets to /media that say nothing, closed on exit."""
    opened: list[aiohttp.ClientWebSocketResponse] = []
    try:
        for _ in range(count):
            opened.append(await api.client.ws_connect("/media", protocols=("media",)))
        yield opened
    finally:
        for ws in opened:
            await ws.close()


async def test_past_the_cap_a_stranger_is_refused_at_once_and_asterisk_gets_in_after(
    api: Api, client_mode: MediaAcceptor
) -> None:
    acceptor = client_mode
    pending = acceptor.expect("call-1")
    async with strangers(api, MAX_UNAUTHENTICATED) as idle:
        assert acceptor.unauthenticated == MAX_UNAUTHENTICATED
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await api.client.ws_connect("/media", protocols=("media",))
        assert refused.value.status == 429
        # Asterisk's own connection too, while the strangers hold the node's room.
        over = await api.client.get("/media")
        assert over.status == 429
        assert (await over.json())["error"] == "Too many requests"
        assert over.headers["Retry-After"] == "2"  # the strangers are closed by then
        # Each stranger is closed for want of a MEDIA_START; the room is free again.
        codes = await asyncio.gather(*(closed_by_server(ws) for ws in idle))
        assert set(codes) == {1008}
    await until(lambda: acceptor.unauthenticated == 0)
    ws = await api.client.ws_connect("/media", protocols=("media",))
    await ws.send_str(start("call-1", pending.token))
    async with await pending.session(wait=2.0) as media:
        assert media.format.name == "ulaw"
    await ws.close()


async def test_a_stranger_that_sends_junk_is_closed_at_once(
    api: Api, client_mode: MediaAcceptor
) -> None:
    # A text message that is not a MEDIA_START (Asterisk's first message is one).
    async with strangers(api, 1) as (ws,):
        await ws.send_str("GET_STATUS")
        assert await closed_by_server(ws) == 1008
    # Audio before a MEDIA_START, past what a handshake needs.
    async with strangers(api, 1) as (ws,):
        frame = bytes(1024)
        for _ in range(HANDSHAKE_BYTES // len(frame) + 1):
            await ws.send_bytes(frame)
        assert await closed_by_server(ws) == 1008
    # One message larger than any Asterisk sends (aiohttp's "message too big").
    async with strangers(api, 1) as (ws,):
        await ws.send_bytes(bytes(HANDSHAKE_BYTES + 1))
        assert await closed_by_server(ws) == 1009
    # A MEDIA_START padded past the handshake's bytes.
    async with strangers(api, 1) as (ws,):
        await ws.send_bytes(bytes(HANDSHAKE_BYTES - 100))
        await ws.send_str(start("call-1", "x" * 24))
        assert await closed_by_server(ws) == 1008
    assert client_mode.refused == 4
    await until(lambda: client_mode.unauthenticated == 0)


async def test_a_stranger_that_waits_is_closed_early_and_nothing_of_a_token_is_logged(
    api: Api, client_mode: MediaAcceptor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert client_mode.start_timeout <= 2.0  # Asterisk's MEDIA_START comes at once
    pending = client_mode.expect("call-1")
    async with strangers(api, 1) as (ws,):
        assert await closed_by_server(ws) == 1008
    presented = "y" * len(pending.token)
    async with strangers(api, 1) as (ws,):
        await ws.send_str(start("call-1", presented).replace("media-1", "evil\nline"))
        assert await closed_by_server(ws) == 1008
    assert client_mode.refused == 2
    for text in (pending.token, presented, "evil"):
        assert text not in caplog.text
    pending.cancel()
