"""``GET /calls/{id}/listen``: a live call's two sides as audio, over a websocket.

Authorized as every request (``Authorization: Bearer <key>``, or the console's session cookie,
which a browser sends with the websocket's handshake), by a key that holds the listen grant
(``ApiKey.listen``: 403 otherwise); a key hears only its organization's calls. The refusals
are answered before the upgrade, as JSON error bodies (``calls/listening.py``: 404, 409 ``Call not
active`` or ``Call on another node``, 429). A call another worker of this machine serves
(``voicedock serve --workers``) is relayed to that worker (``api/machine.py``): its refusals,
then its stream.

Once upgraded: one text message ``{"type": "hello", ...}`` stating the format, then one binary
message per 20 ms frame of either side (``media/listen_tap.py``: an 8-byte header, then 16-bit PCM),
and at the end one text message ``{"type": "end", "reason": ..., "dropped_frames": n}`` before
the server closes the websocket (1000). The stream ends when the call ends, the client closes
it, the key is revoked, its listen grant withdrawn or the console session signed out (within
``KEY_CHECK_SECONDS``), or the server shuts down. What the client sends is ignored.
docs/live-listen.md is the reference.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from voicedock.aio import first_of
from voicedock.api.app_keys import API_KEY, CONSOLE_SESSION, SERVICE
from voicedock.api.audit import record_now
from voicedock.api.authentication import current_key, organization_of
from voicedock.api.key_scopes import check_listen
from voicedock.api.machine import MACHINE
from voicedock.api.routes.call_events import KEY_CHECK_SECONDS
from voicedock.api.routes.calls import CALLS
from voicedock.calls.listening import CallOnAnotherNode
from voicedock.errors import BadRequest, Forbidden, NotFound

routes = web.RouteTableDef()

HEARTBEAT_SECONDS = 15.0
MAX_MESSAGE = 4096  # what a listener sends is ignored
CLIENT_CLOSED = "client-closed"
SIGNED_OUT = "credentials-ended"
SHUTDOWN = "shutdown"


def setup(app: web.Application) -> None:
    """Register the route; listeners end when the server shuts down."""

    async def on_shutdown(app: web.Application) -> None:
        if SERVICE in app:
            app[SERVICE].listening.end_all(SHUTDOWN)

    app.on_shutdown.append(on_shutdown)
    app.add_routes(routes)


def _no_upgrade() -> BadRequest:
    return BadRequest("connect with a websocket (Upgrade: websocket) to listen")


def _same_origin(request: web.Request) -> bool:
    """A browser's handshake names the page's origin: a console session listens only from
    a page of this host (no other site's page can reuse the cookie's session)."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


@routes.get("/calls/{id}/listen")
async def listen(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    if not service.settings.listen.enabled:
        raise NotFound("live listen is turned off on this node ([listen] enabled)")
    check_listen(request[API_KEY])
    call_id = CALLS.path_id(request)
    if request.get(CONSOLE_SESSION) is not None and not _same_origin(request):
        raise Forbidden("a console session listens from the console's own page only")
    listening = service.listening
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_MESSAGE)
    # 404, 409 or 429 as JSON, before the upgrade.
    try:
        await listening.call(organization_of(request), call_id)
    except CallOnAnotherNode as elsewhere:  # another worker of this machine: relayed there
        machine = request.app.get(MACHINE)
        url = machine.url_of(elsewhere.node, request.path) if machine is not None else None
        if machine is None or url is None:
            raise
        if not ws.can_prepare(request).ok:
            raise _no_upgrade() from None
        return await machine.relay_websocket(
            request, url, heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_MESSAGE
        )
    listening.check_room(organization_of(request), call_id)
    if not ws.can_prepare(request).ok:
        raise _no_upgrade()
    async with listening.listen(organization_of(request), call_id) as (call, listener):
        await record_now(request, "call.listen", "call", call_id)
        await ws.prepare(request)
        try:
            await ws.send_json(listening.hello(call, listener))

            async def send() -> str:
                while frames := await listener.take():
                    for frame in frames:
                        await ws.send_bytes(frame)
                return listener.end_reason or CLIENT_CLOSED

            async def receive() -> str:
                async for message in ws:  # ignored; pongs and the close are handled here
                    if message.type is WSMsgType.ERROR:
                        break
                return CLIENT_CLOSED

            async def credentials() -> str:
                while True:
                    await asyncio.sleep(KEY_CHECK_SECONDS)
                    key = await current_key(request)
                    if key is None or not key.listen:  # revoked, signed out, grant withdrawn
                        return SIGNED_OUT

            first = await first_of(send(), receive(), credentials())
            reason = first[1] if first is not None else CLIENT_CLOSED
            if not ws.closed:
                end = {"type": "end", "reason": reason, "dropped_frames": listener.dropped}
                await ws.send_json(end)
        except ConnectionError:
            pass  # the client went away
        finally:
            with contextlib.suppress(ConnectionError):
                await ws.close()
    return ws
