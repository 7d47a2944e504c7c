"""A provider's websocket session whose start fails half way (the socket open, its reader
running, then the first message refused) leaves nothing open: ``async with`` closes it."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from voicedock.errors import ProviderError
from voicedock.pipeline.providers._http import OwnedSession, Timeouts
from voicedock.pipeline.providers.socket_session import SocketSession

pytestmark = pytest.mark.unit


class RefusedAtStart(SocketSession[str]):
    """Connects, starts its reader, then fails what it sends first."""

    def __init__(self, session: OwnedSession, url: str) -> None:
        super().__init__("probe", "session", session, url, {})
        self.reader_ended = asyncio.Event()

    async def _connected(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        raise ProviderError("the session update was refused")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for _ in ws:
                pass
        finally:
            self.reader_ended.set()
            await self._items.end()


async def test_a_session_failing_after_its_socket_opened_is_closed_by_async_with() -> None:
    closed = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        closed.set()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    async with TestServer(app) as server:
        owned = OwnedSession(Timeouts())
        session = RefusedAtStart(owned, str(server.make_url("/ws")))
        with pytest.raises(ProviderError, match="refused"):
            async with session:
                pytest.fail("the session started")
        async with asyncio.timeout(2):
            await closed.wait()  # the provider saw the socket closed
        assert session.reader_ended.is_set()
        with pytest.raises(ProviderError):
            session._socket()  # nothing more is sent on it
        await owned.aclose()
