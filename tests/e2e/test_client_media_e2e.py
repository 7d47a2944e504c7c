"""Client media mode on the real lab Asterisk: Asterisk dials voicedock's web app for the audio.

The lab renders ``websocket_client.conf`` with ``voicedock_media`` pointing at
``ws://127.0.0.1:<media_ws_port>/media``; the e2e lab picks that port free at start-up, so the
test serves the whole app (REST and ``/media``) on exactly that port.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from e2e.audio_helpers import (
    TALK_OVER_PARTY,
    UTTERANCE_PARTY,
    require_offline_speech,
    words,
)
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import (
    SHORT_GREETING,
    control,
    has_words,
    place_call,
    wait_recorded,
    wait_transcript,
    warm_speech,  # noqa: F401 - a fixture, used by name
)
from e2e.test_calls_e2e import TERMINAL, wait_status
from fakes.world import ACME
from voicedock.api.api_keys import issue_api_key
from voicedock.api.app import create_app
from voicedock.calls.commands import API_END_CALL
from voicedock.calls.runner.one_call import MEDIA_ERROR
from voicedock.pbx.asterisk.media.acceptor import MediaAcceptor, PendingMedia
from voicedock.pbx.asterisk.media.session import MediaSession
from voicedock.pbx.asterisk.pbx import AsteriskPbx
from voicedock.service import Service
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]


@pytest.fixture(autouse=True)
def _offline_speech() -> None:
    require_offline_speech()


def count_connections(acceptor: MediaAcceptor) -> list[str]:
    """The calls of the media connections Asterisk opens to ``/media`` (in order of arrival)."""
    seen: list[str] = []
    expect = acceptor.expect

    def spy(call_id: str) -> PendingMedia:
        pending = expect(call_id)
        original = pending.session

        async def session(wait: float = 10.0) -> MediaSession:
            connected = await original(wait)
            seen.append(call_id)
            return connected

        pending.session = session  # type: ignore[method-assign]
        return pending

    acceptor.expect = spy  # type: ignore[method-assign]
    return seen


@pytest.fixture
async def live_client_mode(lab: LabAsterisk, tmp_path: Path) -> AsyncIterator[LiveService]:
    """The service with ``media_connection = "client"``, served where the lab's Asterisk dials."""
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    settings.pbx.asterisk.media_connection = "client"
    services: list[Service] = []

    async def factory() -> Service:
        services.append(await Service.open(settings))
        return services[-1]

    port = lab.settings.media_ws_port
    server = TestServer(create_app(settings, factory), host="127.0.0.1", port=port)
    client: TestClient[Any, Any] = TestClient(server)
    await client.start_server()
    try:
        service = services[0]
        assert isinstance(service.pbx, AsteriskPbx)
        assert service.media_acceptor is not None
        await service.pbx.ari.wait_registered(10)
        key, _ = await issue_api_key(service.store, ACME)
        yield LiveService(client, service, key)
    finally:
        await client.close()


async def converse(live: LiveService, party: str, heard: Callable[[dict[str, Any]], bool]) -> str:
    """Call ``party``, wait until what it says is transcribed, end the call; the call id."""
    call_id = await place_call(live, party, SHORT_GREETING)
    await wait_transcript(live, call_id, heard, within=30)
    await control(live, call_id, {"type": "end-call"})
    return call_id


@pytest.mark.usefixtures("warm_speech")
async def test_two_client_mode_calls_each_hear_their_own_party_and_end_after_end_call(
    live_client_mode: LiveService,
) -> None:
    """Each connection Asterisk opens to /media reaches its own call (matched by the
    VOICEDOCK_CALL channel variable): two parties saying different things at the same time."""
    live = live_client_mode
    acceptor = live.service.media_acceptor
    assert acceptor is not None
    connections = count_connections(acceptor)
    appointment, invoice = await asyncio.gather(
        converse(live, UTTERANCE_PARTY, has_words("appointment", "monday")),
        converse(live, TALK_OVER_PARTY, has_words("invoice")),
    )
    heard: dict[str, set[str]] = {}
    for call_id in (appointment, invoice):
        ended = await wait_recorded(live, call_id, within=15)
        assert ended["status"] == "ended"
        assert ended["end_reason"] == API_END_CALL
        user = " ".join(m["content"] for m in ended["messages"] if m["role"] == "user")
        heard[call_id] = words(user)
        assistant = [m for m in ended["messages"] if m["role"] == "assistant"]
        assert SHORT_GREETING.startswith(assistant[0]["content"].rstrip(".…"))
    assert {"appointment", "monday"} <= heard[appointment]
    assert "invoice" not in heard[appointment], heard
    assert "invoice" in heard[invoice]
    assert not {"appointment", "monday"} & heard[invoice], heard
    # The audio came over one connection per call, and none was turned away.
    assert sorted(connections) == sorted([appointment, invoice])
    assert acceptor.refused == 0


async def test_client_mode_call_ends_soon_when_asterisk_cannot_reach_voicedock(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    """Served on another port than websocket_client.conf names: Asterisk gives up on the media
    leg after about a second, and the call ends then with a reason, not after the 5 s wait."""
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    settings.pbx.asterisk.media_connection = "client"
    live = await serve(settings)  # on a port of its own: nobody listens where Asterisk dials
    try:
        call_id = await place_call(live, UTTERANCE_PARTY, SHORT_GREETING)
        await wait_status(live, call_id, ("in-progress", *TERMINAL), within=10)
        answered = time.monotonic()
        ended = await wait_recorded(live, call_id, within=10)
        assert time.monotonic() - answered < 4.0
        assert ended["status"] == "ended"
        assert ended["end_reason"] == MEDIA_ERROR
        assert not [m for m in ended["messages"] if m["role"] == "user"]
    finally:
        await live.client.close()
