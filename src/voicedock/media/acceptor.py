"""Client mode: Asterisk dials our websocket server, and we hand each connection to its call.

Mount ``MediaAcceptor.handle`` as an aiohttp GET route (e.g. ``/media``) and point
``websocket_client.conf`` (``protocols = media``) at it. Before the ARI externalMedia call,
register the call with ``expect(call_id)``; the connection is matched by the MEDIA_START
``channel_variables`` entry (``VOICEDOCK_CALL``, JSON control format) or, failing that, the
``?call=`` query parameter from ``v(call=...)``. Prefer the channel variable: Asterisk keeps
``v()`` parameters on the shared websocket_client config, so they leak into later calls.

    pending = acceptor.expect(call_id)
    ...POST /ari/channels/externalMedia?...&external_host=voicedock_media...
    async with await pending.session(wait=10) as media:
        ...
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from voicedock.errors import MediaError
from voicedock.media.errors import MediaStartTimeout
from voicedock.media.session import MediaSession
from voicedock.media.transport import read_media_start

log = logging.getLogger("voicedock.media")

_POLICY_VIOLATION = 1008


class PendingMedia:
    """A call waiting for Asterisk to connect its media websocket."""

    def __init__(self, acceptor: MediaAcceptor, call_id: str) -> None:
        self.call_id = call_id
        self._acceptor = acceptor
        self._future: asyncio.Future[MediaSession] = asyncio.get_running_loop().create_future()

    async def session(self, wait: float = 10.0) -> MediaSession:
        """The connected session (use it with ``async with``); MediaStartTimeout if none came."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._future), wait)
        except TimeoutError as exc:
            raise MediaStartTimeout(f"no media connection for the call within {wait} s") from exc
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Stop waiting; a connection arriving later for this call is refused."""
        self._acceptor._forget(self)


class MediaAcceptor:
    def __init__(
        self,
        *,
        call_variable: str = "VOICEDOCK_CALL",
        query_parameter: str = "call",
        start_timeout: float = 5.0,
        claim_timeout: float = 5.0,
        **session_options: Any,
    ) -> None:
        self._call_variable = call_variable
        self._query_parameter = query_parameter
        self._start_timeout = start_timeout
        self._claim_timeout = claim_timeout
        self._session_options = session_options
        self._pending: dict[str, PendingMedia] = {}
        self.refused = 0

    def expect(self, call_id: str) -> PendingMedia:
        if call_id in self._pending:
            raise MediaError("a media connection is already expected for this call")
        pending = PendingMedia(self, call_id)
        self._pending[call_id] = pending
        return pending

    def _forget(self, pending: PendingMedia) -> None:
        if self._pending.get(pending.call_id) is pending:
            del self._pending[pending.call_id]

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        # No compression: Asterisk's client aborts if we answer with Sec-WebSocket-Extensions.
        ws = web.WebSocketResponse(protocols=("media",), compress=False, timeout=2.0)
        await ws.prepare(request)
        try:
            started, control = await read_media_start(ws, self._start_timeout)
        except MediaError as exc:
            log.warning("media: client connection without a usable MEDIA_START: %s", exc)
            await ws.close()
            return ws
        call_id = started.channel_variables.get(self._call_variable) or request.query.get(
            self._query_parameter, ""
        )
        pending = self._pending.pop(call_id, None)
        if pending is None or pending._future.done():
            self.refused += 1
            log.warning("media: refusing connection for unexpected channel %s", started.channel_id)
            await ws.close(code=_POLICY_VIOLATION, message=b"unexpected call")
            return ws
        try:
            session = MediaSession(ws, started, control, **self._session_options)
        except MediaError as exc:
            log.warning("media: refusing channel %s: %s", started.channel_id, exc)
            await ws.close(code=_POLICY_VIOLATION, message=b"unsupported media")
            return ws
        pending._future.set_result(session)
        # The websocket lives as long as this handler: wait for the owner to finish with it.
        try:
            await asyncio.wait_for(session.entered.wait(), self._claim_timeout)
            await session.wait_closed()
        except TimeoutError:
            log.warning("media: nobody took the session of channel %s", started.channel_id)
        finally:
            await session.aclose()
        return ws
