"""The websocket server FreeSWITCH's audio-stream module connects to, one connection per call.

``uuid_audio_stream <uuid> start <url> mono 8k|16k <metadata>`` makes FreeSWITCH the websocket
*client*. voicedock hosts the endpoint here (aiohttp, on ``freeswitch.media_host``/``media_port``)
and hands each connection to the call that asked for it:

    pending = server.expect(channel_uuid)      # before uuid_audio_stream ... start
    ... start pending.url ...
    ws = await pending.websocket(wait=5)        # the module connected

The URL is ``<public>/freeswitch/audio/<uuid>/<token>``: the uuid correlates the connection with
its call and the token (random, per stream, compared in constant time) keeps anyone else who can
reach the port from injecting or receiving call audio. A connection nobody expects is refused
with 403 before the websocket upgrade. The aiohttp handler lives as long as the websocket, so it
waits until the owner calls ``pending.release()``.

The token is a secret for as long as its stream is expected: no log line carries it. The server
keeps no access log (aiohttp's would write the URL's path), and text that may hold a stream's
URL (FreeSWITCH's replies and events) is logged through ``mask_stream_tokens``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from aiohttp import web

from voicedock.aio import Started
from voicedock.media.call_token import new_call_token, token_matches
from voicedock.media.errors import MediaStartTimeout
from voicedock.media.expected import Expected

log = logging.getLogger("voicedock.media.freeswitch")

ROUTE = "/freeswitch/audio/{uuid}/{token}"
_STREAM_PATH = re.compile(r"(/freeswitch/audio/[^/\s\"']*/)[^/\s\"'?#]+")
MASKED_TOKEN = "****"  # noqa: S105 - what a log line shows in a token's place


def mask_stream_tokens(text: str) -> str:
    """``text`` with the token of every audio-stream URL in it replaced by ``****``."""
    return _STREAM_PATH.sub(lambda m: m.group(1) + MASKED_TOKEN, text)


class PendingStream:
    """One expected connection; ``websocket()`` returns it once FreeSWITCH connected."""

    def __init__(self, server: AudioStreamServer, channel_uuid: str, token: str) -> None:
        self.channel_uuid = channel_uuid
        self.token = token
        self.url = f"{server.public_url}/freeswitch/audio/{channel_uuid}/{token}"
        self._server = server
        self._ws: asyncio.Future[web.WebSocketResponse] = asyncio.get_running_loop().create_future()
        self._released = asyncio.Event()

    async def websocket(self, wait: float = 5.0) -> web.WebSocketResponse:
        """The connected websocket; ``MediaStartTimeout`` if FreeSWITCH did not connect."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._ws), wait)
        except TimeoutError as exc:
            self.release()
            raise MediaStartTimeout(f"no audio stream connection within {wait} s") from exc

    def release(self) -> None:
        """The owner is done with the websocket (or stopped waiting): end its handler."""
        self._server._forget(self)
        self._released.set()
        if not self._ws.done():
            self._ws.cancel()


class AudioStreamServer(Started):
    def __init__(self, host: str = "127.0.0.1", port: int = 0, public_url: str = "") -> None:
        """``public_url`` (``ws://host:port``) is how FreeSWITCH reaches us; default: host/port."""
        self.host = host
        self._port = port
        self._public_url = public_url.rstrip("/")
        self._pending: Expected[PendingStream] = Expected(
            "an audio stream is already expected for this channel"
        )
        self._runner: web.AppRunner | None = None
        self._active: set[PendingStream] = set()
        self.refused = 0

    @property
    def port(self) -> int:
        return self._port

    @property
    def public_url(self) -> str:
        return self._public_url or f"ws://{self.host}:{self._port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(ROUTE, self._handle)
        # No access log: each request's path holds its stream's token.
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        server = site._server
        if self._port == 0 and isinstance(server, asyncio.Server) and server.sockets:
            self._port = int(server.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        """Refuse new connections, end every open stream; idempotent."""
        for pending in [*self._pending.waiting(), *self._active]:
            pending.release()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def expect(self, channel_uuid: str) -> PendingStream:
        pending = PendingStream(self, channel_uuid, new_call_token())
        return self._pending.add(channel_uuid, pending)

    def _forget(self, pending: PendingStream) -> None:
        self._pending.forget(pending.channel_uuid, pending)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        pending = self._pending.get(request.match_info["uuid"])
        token = request.match_info["token"]
        if pending is None or pending._ws.done() or not token_matches(pending.token, token):
            self.refused += 1
            log.warning("audio stream: refusing an unexpected connection")
            raise web.HTTPForbidden()
        # No compression: audio does not deflate and mod_audio_stream may disable it anyway.
        ws = web.WebSocketResponse(compress=False, timeout=2.0)
        await ws.prepare(request)
        self._forget(pending)
        pending._ws.set_result(ws)
        self._active.add(pending)
        try:
            await pending._released.wait()
        finally:
            self._active.discard(pending)
            with contextlib.suppress(Exception):
                await ws.close()
        return ws
