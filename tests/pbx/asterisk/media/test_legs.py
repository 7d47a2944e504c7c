"""AsteriskMedia.session (AsteriskPbx.call_media): bridge + externalMedia over a stub ARI, the
media websocket to the in-process chan_websocket endpoint, release on exit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from media.fake_asterisk import FakeAsterisk
from voicedock.config import AsteriskSettings
from voicedock.errors import PbxError
from voicedock.pbx.asterisk.ari.rest import HTTP_CONNECTS_AT_ONCE
from voicedock.pbx.asterisk.media import legs as asterisk_media
from voicedock.pbx.asterisk.media.acceptor import MediaAcceptor
from voicedock.pbx.asterisk.media.legs import AsteriskMedia
from voicedock.pbx.asterisk.media.transports import MediaTransports
from voicedock.pbx.legs import CallRegistry

pytestmark = pytest.mark.unit

CALL = "call-abc"
CONNECTION = "5e29e219-a229-4e81-b0eb-8b6e5c0a6aba"


class StubAri:
    """Answers the REST calls AsteriskMedia makes, like Asterisk does (findings §2b)."""

    def __init__(self, fake: FakeAsterisk) -> None:
        self.fake = fake
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.bodies: list[Any] = []
        self.hung_up: list[str] = []
        # Client mode: Asterisk dials, and its MEDIA_START carries the leg's channel variables.
        self.on_external_media: Callable[[Mapping[str, str]], None] | None = None
        self.dialing = asyncio.Semaphore(HTTP_CONNECTS_AT_ONCE)  # AriClient.dialing

    def events_url(self) -> str:
        return f"ws://127.0.0.1:{self.fake.port}/ari/events?app=voicedock"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Any:
        self.requests.append((method, path, dict(params or {})))
        self.bodies.append(body)
        if path == "/bridges":
            return {"id": (params or {})["bridgeId"]}
        if path == "/channels/externalMedia":
            if self.on_external_media is not None:
                self.on_external_media(dict((body or {}).get("variables", {})))
            return {"id": "x", "channelvars": {"MEDIA_WEBSOCKET_CONNECTION_ID": CONNECTION}}
        return None

    async def hangup_channel(self, channel_id: str, reason: str = "normal") -> bool:
        self.hung_up.append(channel_id)
        return True


@pytest.fixture
def client_section() -> str | None:
    """Client mode's websocket_client.conf section (``None``: server mode, no acceptor)."""
    return None


@pytest.fixture
async def setup(
    client_section: str | None,
) -> AsyncIterator[tuple[FakeAsterisk, StubAri, AsteriskMedia]]:
    tasks: list[asyncio.Task[Any]] = []

    def spawn(coro: Coroutine[Any, Any, Any]) -> None:
        tasks.append(asyncio.create_task(coro))

    async with FakeAsterisk(send_audio=False) as fake:
        ari = StubAri(fake)
        calls = CallRegistry()
        calls.add(CALL, "call-abc", "outbound")
        settings = AsteriskSettings()
        acceptor = None
        if client_section is not None:
            acceptor = MediaAcceptor(start_timeout=2.0, claim_timeout=2.0)
            settings = AsteriskSettings(
                media_connection="client", media_client_connection=client_section
            )
        transports = MediaTransports(settings, ari, acceptor=acceptor)  # type: ignore[arg-type]
        try:
            yield fake, ari, AsteriskMedia(ari, "voicedock", calls, spawn, transports)  # type: ignore[arg-type]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def test_media_is_yielded_once_both_legs_are_bridged_and_released_after(
    setup: tuple[FakeAsterisk, StubAri, AsteriskMedia],
) -> None:
    fake, ari, media_legs = setup
    entered = asyncio.Event()

    async def use() -> bool:
        async with media_legs.session(CALL, media_format="slin16") as media:
            entered.set()
            return not media.closed

    task = asyncio.create_task(use())
    async with asyncio.timeout(3):
        await fake.connected.wait()
    await asyncio.sleep(0.05)
    assert not entered.is_set()  # the caller's leg is not in the bridge yet
    media_legs.entered_stasis("call-abc-media")
    media_legs.entered_stasis("call-abc")
    async with asyncio.timeout(3):
        assert await task
    external = next(p for m, path, p in ari.requests if path == "/channels/externalMedia")
    assert external["format"] == "slin16"
    assert external["connection_type"] == "server"
    adds = [p["channel"] for m, path, p in ari.requests if path.endswith("/addChannel")]
    assert adds == ["call-abc-media", "call-abc"]
    assert CONNECTION in fake.channels  # connected to /media/<connection id>, no credentials
    assert ari.hung_up == ["call-abc-media"]  # the call itself stays up
    assert ("DELETE", "/bridges/call-abc-bridge", {}) in ari.requests


async def test_legs_never_bridged_fail_the_media_and_release_it(
    setup: tuple[FakeAsterisk, StubAri, AsteriskMedia], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ari, media_legs = setup
    monkeypatch.setattr(asterisk_media, "_BRIDGE_WAIT", 0.1)
    with pytest.raises(PbxError):
        async with media_legs.session(CALL, media_format="ulaw"):
            pytest.fail("media yielded without a bridge")
    assert ari.hung_up == ["call-abc-media"]
    assert ("DELETE", "/bridges/call-abc-bridge", {}) in ari.requests


async def test_media_for_an_unknown_call_is_refused(
    setup: tuple[FakeAsterisk, StubAri, AsteriskMedia],
) -> None:
    _, ari, media_legs = setup
    with pytest.raises(PbxError):
        async with media_legs.session("call-gone", media_format="ulaw"):
            pytest.fail("media for a call that is not live")
    assert ari.requests == []


def media_start_json(variables: Mapping[str, str]) -> str:
    return json.dumps(
        {
            "event": "MEDIA_START",
            "connection_id": "voicedock_media",
            "channel": "WebSocket/voicedock_media/0x556af41f7ec0",
            "channel_id": "call-abc-media",
            "format": "ulaw",
            "optimal_frame_size": 160,
            "ptime": 20,
            "channel_variables": dict(variables),
        }
    )


@pytest.mark.parametrize("client_section", ["voicedock_media", "voicedock_media_2"])
async def test_client_mode_asterisk_connects_to_our_acceptor(
    setup: tuple[FakeAsterisk, StubAri, AsteriskMedia], client_section: str
) -> None:
    """The media leg dials this node's websocket_client.conf section (a second node on the
    same machine has its own, pointing at its own port)."""
    _, ari, media_legs = setup
    section, acceptor = client_section, media_legs.acceptor
    assert acceptor is not None
    app = web.Application()
    app.router.add_get("/media", acceptor.handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"ws://127.0.0.1:{runner.addresses[0][1]}/media"
    dialled: list[asyncio.Task[None]] = []

    async def asterisk_dials(variables: Mapping[str, str]) -> None:
        """What websocket_client.conf [voicedock_media] does."""
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(url, protocols=("media",)) as ws,
        ):
            await ws.send_str(media_start_json(variables))
            async for _message in ws:  # until voicedock closes the media
                pass

    ari.on_external_media = lambda v: dialled.append(asyncio.create_task(asterisk_dials(v)))
    media_legs.entered_stasis("call-abc-media")
    media_legs.entered_stasis("call-abc")
    try:
        async with (
            asyncio.timeout(5),
            media_legs.session(CALL, media_format="ulaw") as media,
        ):
            assert media.format.name == "ulaw"
        external = next(p for m, path, p in ari.requests if path == "/channels/externalMedia")
        assert external["connection_type"] == "client"
        assert external["external_host"] == section
        assert external["transport_data"] == "f(json)"
        (variables,) = [b["variables"] for b in ari.bodies if b and "variables" in b]
        assert variables["VOICEDOCK_CALL"] == CALL
        assert len(variables["VOICEDOCK_MEDIA_TOKEN"]) >= 24  # the call's own secret
        assert ari.hung_up == ["call-abc-media"]
        async with asyncio.timeout(3):
            await asyncio.gather(*dialled)
    finally:
        await runner.cleanup()


async def test_client_mode_without_an_acceptor_is_refused(
    setup: tuple[FakeAsterisk, StubAri, AsteriskMedia],
) -> None:
    _, ari, media_legs = setup
    media_legs.transports = MediaTransports(
        AsteriskSettings(media_connection="client"),
        ari,  # type: ignore[arg-type]
    )
    with pytest.raises(PbxError):
        async with media_legs.session(CALL, media_format="ulaw"):
            pytest.fail("client media without an endpoint to receive it")
    assert not any(path == "/channels/externalMedia" for _, path, _ in ari.requests)
