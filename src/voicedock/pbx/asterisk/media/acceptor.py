"""Client mode: Asterisk dials our websocket server, and we hand each connection to its call.

Mount ``MediaAcceptor.handle`` as an aiohttp GET route (e.g. ``/media``) and point
``websocket_client.conf`` (``protocols = media``) at it. Before the ARI externalMedia call,
register the call with ``expect(call_id)`` and pass ``pending.token`` with the call id as
channel variables of the media leg; Asterisk sends them back in the MEDIA_START message
(``channel_variables``, JSON control format). A connection is handed to the call it names
(``VOICEDOCK_CALL``) only when it also presents that call's token (``VOICEDOCK_MEDIA_TOKEN``,
compared in constant time, ``call_token``); any other is closed with 1008 and the call goes
on waiting for its own. Anyone who can reach ``/media`` may know a call id (an inbound one is
built from the caller's number), never its token, which travels only over authenticated ARI.

Until it has shown its token a connection is a stranger, and costs little: at most
``MAX_UNAUTHENTICATED`` of them at once on the node (one more is refused at once, 429 with
``Retry-After``, before the websocket upgrade), each closed (1008) unless its MEDIA_START,
Asterisk's first message, arrives within ``HANDSHAKE_SECONDS`` and ``HANDSHAKE_BYTES``; any
message is at most ``MAX_MESSAGE_BYTES`` (a MEDIA_START, a control event, a frame of audio).
Nothing a stranger sends is logged: neither a token nor its other text.

The token is not put in the URI with ``v(token=...)``: Asterisk stores ``v()`` parameters on
the websocket_client configuration all calls share (``ast_websocket_client_add_uri_params``),
so concurrent calls would overwrite each other's, and they leak into later calls.

    pending = acceptor.expect(call_id)
    ...POST /ari/channels/externalMedia?...&external_host=voicedock_media...
       {"variables": {"VOICEDOCK_CALL": call_id, "VOICEDOCK_MEDIA_TOKEN": pending.token}}
    async with await pending.session(wait=10) as media:
        ...
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Unpack

from aiohttp import web

from voicedock.errors import MediaError, RateLimited
from voicedock.media.call_token import new_call_token, token_matches
from voicedock.media.errors import MediaStartTimeout
from voicedock.media.expected import Expected
from voicedock.media.strangers import Strangers
from voicedock.pbx.asterisk.media.chan_websocket import CALL_VARIABLE, TOKEN_VARIABLE, MediaStart
from voicedock.pbx.asterisk.media.handshake import read_media_start
from voicedock.pbx.asterisk.media.session import MediaSession, SessionOptions
from voicedock.validation import is_token

log = logging.getLogger("voicedock.media")

_POLICY_VIOLATION = 1008
# Connections to /media not yet matched to a call, at once on the node. Asterisk's own are
# strangers for the few milliseconds until its MEDIA_START: calls starting together stay far
# below this.
MAX_UNAUTHENTICATED = 64
HANDSHAKE_SECONDS = 2.0  # Asterisk sends MEDIA_START as soon as the websocket is open
HANDSHAKE_BYTES = 16 * 1024  # what a stranger may send before and with its MEDIA_START
MAX_MESSAGE_BYTES = 16 * 1024  # any message (a 20 ms slin16 frame is 640 bytes)
_CHANNEL_ID_SHOWN = 64  # a refused channel id is logged only if it looks like Asterisk's


class PendingMedia:
    """A call waiting for Asterisk to connect its media websocket."""

    def __init__(self, acceptor: MediaAcceptor, call_id: str) -> None:
        self.call_id = call_id
        self.token = new_call_token()  # the connection must present it (TOKEN_VARIABLE)
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


class MediaAcceptor(Strangers):
    def __init__(
        self,
        *,
        start_timeout: float = HANDSHAKE_SECONDS,
        claim_timeout: float = 5.0,
        max_unauthenticated: int = MAX_UNAUTHENTICATED,
        **session_options: Unpack[SessionOptions],
    ) -> None:
        super().__init__(max_unauthenticated)
        self.start_timeout = start_timeout
        self._claim_timeout = claim_timeout
        self._session_options = session_options
        self._pending: Expected[PendingMedia] = Expected(
            "a media connection is already expected for this call"
        )
        self._full = False  # refusing for the cap (logged once per episode)

    def expect(self, call_id: str) -> PendingMedia:
        return self._pending.add(call_id, PendingMedia(self, call_id))

    def _forget(self, pending: PendingMedia) -> None:
        self._pending.forget(pending.call_id, pending)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        if not self.admit_stranger():
            if not self._full:
                self._full = True
                log.warning(
                    "media: %d connections have not shown a call's token yet; refusing more",
                    self.unauthenticated,
                )
            raise RateLimited(
                "too many media connections are being set up; retry shortly",
                retry_after_seconds=math.ceil(self.start_timeout),  # a stranger is gone by then
            )
        self._full = False
        try:
            handed = await self._authenticate(request)
        finally:
            self.stranger_known()
        if isinstance(handed, web.WebSocketResponse):
            return handed  # refused, and closed
        ws, session = handed
        # The websocket lives as long as this handler: wait for the owner to finish with it.
        try:
            await asyncio.wait_for(session.entered.wait(), self._claim_timeout)
            await session.wait_closed()
        except TimeoutError:
            log.warning("media: nobody took the session of channel %s", _shown(session.started))
        finally:
            await session.aclose()
        return ws

    async def _authenticate(
        self, request: web.Request
    ) -> web.WebSocketResponse | tuple[web.WebSocketResponse, MediaSession]:
        """The connection's session, handed to its call; or the websocket, refused and closed
        (a MEDIA_START without the token of a call waiting for it, or none in time)."""
        # No compression: Asterisk's client aborts if we answer with Sec-WebSocket-Extensions.
        ws = web.WebSocketResponse(
            protocols=("media",), compress=False, timeout=2.0, max_msg_size=MAX_MESSAGE_BYTES
        )
        await ws.prepare(request)
        try:
            started, control = await read_media_start(
                ws, self.start_timeout, max_bytes=HANDSHAKE_BYTES
            )
        except MediaError as exc:
            self.refused += 1
            log.warning("media: refusing a client connection without a usable MEDIA_START: %s", exc)
            await ws.close(code=_POLICY_VIOLATION, message=b"no media start")
            return ws
        variables = started.channel_variables
        pending = self._pending.get(variables.get(CALL_VARIABLE, ""))
        if (
            pending is None
            or pending._future.done()
            or not token_matches(pending.token, variables.get(TOKEN_VARIABLE, ""))
        ):
            # The call (if any) goes on waiting for the connection that holds its token.
            self.refused += 1
            log.warning("media: refusing connection for unexpected channel %s", _shown(started))
            await ws.close(code=_POLICY_VIOLATION, message=b"unexpected call")
            return ws
        self._forget(pending)
        try:
            session = MediaSession(ws, started, control, **self._session_options)
        except MediaError as exc:
            log.warning("media: refusing channel %s: %s", _shown(started), exc)
            await ws.close(code=_POLICY_VIOLATION, message=b"unsupported media")
            return ws
        pending._future.set_result(session)
        return ws, session


def _shown(started: MediaStart) -> str:
    """The channel id for a log line: a stranger's text is not written."""
    channel = started.channel_id
    return channel if is_token(channel) and len(channel) <= _CHANNEL_ID_SHOWN else "(not shown)"
