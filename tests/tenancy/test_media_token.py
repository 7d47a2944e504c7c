"""Client-mode media (``pbx.asterisk.media_connection = "client"``): Asterisk dials voicedock's
``/media`` for each call's audio. Anyone who can reach that port and knows a call id (an
inbound call's id is built from the caller's number; an outbound one is in every API answer
and webhook) could connect first, name the call in a forged MEDIA_START and take its audio
in both directions. Each call's media leg carries a random token that only Asterisk learns
(over ARI); a connection without it is closed with 1008 and the real call still gets its
media from Asterisk. Strangers that hold sockets open without a token, or send junk, cost
little and are closed early: the real call's connection still gets in.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from e2e.audio_helpers import require_offline_speech
from e2e.conftest import LiveService
from e2e.test_audio_e2e import wait_recorded
from e2e.test_calls_e2e import TERMINAL, wait_status
from fakes.world import assistant_id
from pbx.lab_calls import ANSWERS
from tenancy.conftest import ORGANIZATION
from voicedock.api.api_keys import issue_api_key
from voicedock.api.app import create_app
from voicedock.calls.commands import API_END_CALL
from voicedock.config import Settings
from voicedock.pbx.asterisk.media.acceptor import MediaAcceptor
from voicedock.pbx.asterisk.pbx import AsteriskPbx
from voicedock.service import Service
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

ASSISTANT = assistant_id(ORGANIZATION, "Customer Support")
FORGED_CHANNEL = "forged-1"


@pytest.fixture
async def client_mode(
    tenant_settings: Settings, lab: LabAsterisk, tmp_path: Path
) -> AsyncIterator[LiveService]:
    """The example configuration in client media mode, served where the lab's Asterisk
    dials (``websocket_client.conf [voicedock_media]``)."""
    require_offline_speech()
    tenant_settings.pbx.asterisk.media_connection = "client"
    services: list[Service] = []

    async def factory() -> Service:
        services.append(await Service.open(tenant_settings))
        return services[-1]

    server = TestServer(
        create_app(tenant_settings, factory), host="127.0.0.1", port=lab.settings.media_ws_port
    )
    client: TestClient[Any, Any] = TestClient(server)
    await client.start_server()
    try:
        service = services[0]
        assert isinstance(service.pbx, AsteriskPbx)
        await service.pbx.ari.wait_registered(10)
        key, _ = await issue_api_key(service.store, ORGANIZATION)
        yield LiveService(client, service, key)
    finally:
        await client.close()


def forged_media_start(call_id: str, token: str | None) -> str:
    """What a hostile client sends: Asterisk's MEDIA_START, naming the call."""
    variables = {"VOICEDOCK_CALL": call_id, "MEDIA_WEBSOCKET_CONNECTION_ID": "voicedock_media"}
    if token is not None:
        variables["VOICEDOCK_MEDIA_TOKEN"] = token
    return json.dumps(
        {
            "event": "MEDIA_START",
            "connection_id": "voicedock_media",
            "channel": "WebSocket/voicedock_media/0xbad",
            "channel_id": FORGED_CHANNEL,
            "format": "ulaw",
            "optimal_frame_size": 160,
            "ptime": 20,
            "channel_variables": variables,
        }
    )


async def attack(base: str, call_id: str, token: str | None) -> tuple[int | None, int]:
    """Connect to /media as the call's media; (close code, audio frames received)."""
    audio = 0
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{base}/media", protocols=("media",)) as ws,
    ):
        await ws.send_str(forged_media_start(call_id, token))
        async with asyncio.timeout(5):
            async for message in ws:
                if message.type is aiohttp.WSMsgType.BINARY:
                    audio += 1
                if audio >= 5:  # it is receiving the call's audio
                    break
        return ws.close_code, audio


async def test_a_socket_without_the_calls_token_is_refused_and_the_call_gets_its_media(
    client_mode: LiveService,
) -> None:
    live = client_mode
    acceptor = live.service.media_acceptor
    assert acceptor is not None
    base = str(live.client.make_url("")).rstrip("/")
    outcomes: list[tuple[int | None, int]] = []
    handed: list[str] = []
    real_handle = acceptor.handle
    attacking = asyncio.Event()

    async def handle(request: web.Request) -> web.WebSocketResponse:
        """Before Asterisk's own connection is taken, a hostile client connects first and
        names the call waiting for its media: without a token, then with a wrong one."""
        if not attacking.is_set():
            attacking.set()
            (call_id,) = list(acceptor._pending)
            outcomes.append(await attack(base, call_id, None))
            outcomes.append(await attack(base, call_id, "x" * 24))
        return await real_handle(request)

    acceptor.handle = handle  # type: ignore[method-assign]
    call_id = await placed_with_media(live, acceptor, handed)
    await asyncio.sleep(1.0)  # the call runs on its media
    await ended_as_asked(live, call_id)
    # The hostile sockets were closed as policy violations, before any audio reached them.
    assert outcomes == [(1008, 0), (1008, 0)]
    assert acceptor.refused == 2
    # The call got its media from Asterisk (not the forged channel).
    assert handed
    assert FORGED_CHANNEL not in handed


async def placed_with_media(live: LiveService, acceptor: MediaAcceptor, handed: list[str]) -> str:
    """Place a call to the lab party that answers; its id once its media session is handed
    over (``handed`` records the channel of each)."""
    spy_sessions(acceptor, handed)
    resp = await live.client.post(
        "/calls/outbound",
        json={"destination": ANSWERS, "assistant_id": ASSISTANT},
        headers=live.auth(),
    )
    assert resp.status == 200, await resp.text()
    call_id = str((await resp.json())["call_id"])
    await wait_status(live, call_id, ("in-progress", *TERMINAL), within=20)
    async with asyncio.timeout(10):
        while not handed:
            await asyncio.sleep(0.05)
    return call_id


async def ended_as_asked(live: LiveService, call_id: str) -> None:
    """End the call through the API; it is recorded as ended by that command."""
    ended = await live.client.post(
        f"/calls/{call_id}/control", json={"type": "end-call"}, headers=live.auth()
    )
    assert ended.status == 200, await ended.text()
    record = await wait_recorded(live, call_id, within=15)
    assert record["status"] == "ended"
    assert record["end_reason"] == API_END_CALL


async def test_strangers_holding_media_sockets_are_closed_and_the_call_gets_its_media(
    client_mode: LiveService,
) -> None:
    """Strangers connect before the call (idle ones, one sending junk audio, one a text that
    is no MEDIA_START); Asterisk's connection for the call still gets in and carries it,
    and each stranger is closed as a policy violation."""
    live = client_mode
    acceptor = live.service.media_acceptor
    assert isinstance(acceptor, MediaAcceptor)
    base = str(live.client.make_url("")).rstrip("/")
    handed: list[str] = []
    async with aiohttp.ClientSession() as http:
        sockets = [await http.ws_connect(f"{base}/media", protocols=("media",)) for _ in range(8)]
        assert acceptor.unauthenticated == len(sockets)
        for _ in range(20):  # audio before any MEDIA_START, more than a handshake needs
            await sockets[0].send_bytes(bytes(1024))
        await sockets[1].send_str("QUEUE_DRAINED")
        call_id = await placed_with_media(live, acceptor, handed)
        codes = []
        for ws in sockets:
            async with asyncio.timeout(10):
                message = await ws.receive()
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            codes.append(ws.close_code)
            await ws.close()
    assert codes == [1008] * len(sockets)
    await ended_as_asked(live, call_id)  # the call ran on Asterisk's media all along
    assert acceptor.unauthenticated == 0  # the strangers' handlers are long gone


def spy_sessions(acceptor: MediaAcceptor, handed: list[str]) -> None:
    """Record the channel id of each media session handed to a call."""
    expect = acceptor.expect

    def spy(call_id: str) -> Any:
        pending = expect(call_id)
        original = pending.session

        async def session(wait: float = 10.0) -> Any:
            connected = await original(wait)
            handed.append(connected.started.channel_id)
            return connected

        pending.session = session  # type: ignore[method-assign]
        return pending

    acceptor.expect = spy  # type: ignore[method-assign]
