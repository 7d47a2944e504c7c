"""An Asterisk that goes away with a call on it: its ARI events connection drops.

Stopped, Asterisk hangs its calls up (``ChannelHangupRequest``, then ``ChannelDestroyed``), but
it may be gone before the second: Asterisk 22 stopped while a call's media leg is being
created dies in that request, its connection dropped right after the hang-up request. The call
still ends as that hang-up, when the connection drops, not once Asterisk is back. A connection
that drops with no hang-up requested ends nothing (the calls are reconciled at the reconnect).

``FakeAsterisk`` speaks ARI's wire format (HTTP and the events websocket) on port 0; stopping
it aborts the websocket and refuses every reconnect, as a stopped Asterisk does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

from voicedock.config import AsteriskSettings
from voicedock.domain.ids import new_outbound_call_id
from voicedock.pbx.asterisk.pbx import AsteriskPbx
from voicedock.pbx.base import PbxEvent, PbxEventKind

pytestmark = [pytest.mark.unit, pytest.mark.timeout(20)]

CALL = new_outbound_call_id()
SHUTDOWN_FLAG = 16  # AST_SOFTHANGUP_SHUTDOWN: a soft hang-up's "cause" is a flag


class FakeAsterisk:
    """ARI of one Asterisk: the events websocket of app ``voicedock``, what reconcile and the
    server check read (no channel listed), and the frames the test sends."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self._ws: web.WebSocketResponse | None = None
        self._request: web.BaseRequest | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ari/events", self._events)
        app.router.add_get("/ari/applications/voicedock", self._json({"name": "voicedock"}))
        info = {"status": {"startup_time": "2026-11-27T09:00:00.000+0000"}}
        info["system"] = {"version": "22.6.0"}
        app.router.add_get("/ari/asterisk/info", self._json(info))
        app.router.add_get("/ari/asterisk/modules", self._json([]))
        app.router.add_get("/ari/channels", self._json([]))
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    @staticmethod
    def _json(body: Any) -> Callable[[web.Request], Any]:
        async def answer(_: web.Request) -> web.Response:
            return web.json_response(body)

        return answer

    async def _events(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws, self._request = ws, request
        self.connected.set()
        async for _ in ws:
            pass
        return ws

    async def send(self, event: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_str(json.dumps({"application": "voicedock", **event}))

    async def stop(self) -> None:
        """Gone at once: the websocket aborted (no close frame), reconnects refused."""
        if self._request is not None and self._request.transport is not None:
            self._request.transport.abort()
        if self._runner is not None:
            await self._runner.cleanup()


def channel(state: str = "Up") -> dict[str, Any]:
    return {"id": CALL, "name": "PJSIP/carrier-00000000", "state": state}


@pytest.fixture
async def answered() -> AsyncIterator[tuple[FakeAsterisk, AsteriskPbx, list[PbxEvent]]]:
    """A call answered on the fake Asterisk, its events heard over the real ARI client."""
    asterisk = FakeAsterisk()
    await asterisk.start()
    settings = AsteriskSettings(ari_url=f"http://127.0.0.1:{asterisk.port}/ari")
    pbx = AsteriskPbx(settings)
    events: list[PbxEvent] = []

    async def sink(event: PbxEvent) -> None:
        events.append(event)

    await pbx.start(sink)
    try:
        await asyncio.wait_for(asterisk.connected.wait(), 5)
        await asterisk.send(
            {"type": "StasisStart", "args": ["outbound", CALL], "channel": channel()}
        )
        await until(lambda: [e.kind for e in events] == [PbxEventKind.ANSWERED])
        yield asterisk, pbx, events
    finally:
        await pbx.aclose()
        await asterisk.stop()


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.01)


def hangups(events: list[PbxEvent]) -> list[PbxEvent]:
    return [e for e in events if e.kind is PbxEventKind.HANGUP and e.call_id == CALL]


async def test_a_call_asterisk_hung_up_ends_when_the_connection_drops_before_it_is_destroyed(
    answered: tuple[FakeAsterisk, AsteriskPbx, list[PbxEvent]],
) -> None:
    asterisk, pbx, events = answered
    hang_up = {"type": "ChannelHangupRequest", "soft": True, "cause": SHUTDOWN_FLAG}
    await asterisk.send({**hang_up, "channel": channel()})
    await asterisk.send({"type": "StasisEnd", "channel": channel()})
    await asterisk.stop()  # gone before its ChannelDestroyed

    await until(lambda: bool(hangups(events)))
    [hangup] = hangups(events)
    assert hangup.cause is None  # a soft hang-up's flag is no Q.850 cause
    assert hangup.detail == ""  # the remote party's hang-up, neither reconciled nor a restart
    assert pbx.ari.connect_count == 1  # ended at the drop: Asterisk never came back
    assert CALL not in {legs.call_id for legs in pbx._calls.live()}


async def test_a_call_asterisk_reported_destroyed_ends_once_with_its_cause(
    answered: tuple[FakeAsterisk, AsteriskPbx, list[PbxEvent]],
) -> None:
    asterisk, _, events = answered
    await asterisk.send({"type": "ChannelHangupRequest", "cause": 16, "channel": channel()})
    await asterisk.send({"type": "ChannelDestroyed", "cause": 16, "channel": channel()})
    await until(lambda: bool(hangups(events)))
    await asterisk.stop()
    await asyncio.sleep(0.2)  # the drop is dispatched after the events before it

    [hangup] = hangups(events)
    assert hangup.cause == 16


async def test_a_connection_that_drops_with_no_hang_up_asked_ends_no_call(
    answered: tuple[FakeAsterisk, AsteriskPbx, list[PbxEvent]],
) -> None:
    asterisk, pbx, events = answered
    await asterisk.stop()
    await until(lambda: not pbx.ari.registered)
    await asyncio.sleep(0.2)

    assert not hangups(events)
    assert CALL in {legs.call_id for legs in pbx._calls.live()}  # reconciled when back
