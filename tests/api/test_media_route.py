"""``/media``: the client-mode media endpoint of the web app (Asterisk dials voicedock)."""

from __future__ import annotations

import json

import aiohttp
import pytest

from api.conftest import Api
from voicedock.pbx.asterisk.media.acceptor import MediaAcceptor

pytestmark = pytest.mark.unit


async def test_media_is_404_without_client_mode_and_needs_no_api_key(api: Api) -> None:
    response = await api.client.get("/media")
    assert response.status == 404


async def test_media_takes_the_expected_call_and_refuses_strangers(api: Api) -> None:
    acceptor = MediaAcceptor(start_timeout=1.0, claim_timeout=1.0)
    api.service.media_acceptor = acceptor

    def start(call: str, token: str = "") -> str:
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
