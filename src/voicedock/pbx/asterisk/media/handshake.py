"""The websocket types a chan_websocket session runs over, and the MEDIA_START handshake.

Server mode (we dial Asterisk) runs over voicedock's own ``WebSocketClient``, which hands each
message over as it arrives; client mode (Asterisk dials us) over aiohttp's
``web.WebSocketResponse``, served by ``voicedock.pbx.asterisk.media.acceptor``.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web

from voicedock.media.errors import MediaConnectionLost, MediaStartTimeout
from voicedock.pbx.asterisk.media import chan_websocket as wire
from voicedock.pbx.asterisk.media.websocket_client import WebSocketClient

log = logging.getLogger("voicedock.media")

MediaWebSocket = WebSocketClient | web.WebSocketResponse


async def read_media_start(
    ws: MediaWebSocket, start_timeout: float
) -> tuple[wire.MediaStart, wire.ControlFormat]:
    """Read until MEDIA_START (always Asterisk's first TEXT frame); audio before it is ignored.

    Returns the MEDIA_START and the control format Asterisk uses on this channel, which is the
    format our commands must use too.
    """
    ignored = 0
    try:
        async with asyncio.timeout(start_timeout):
            while True:
                message = await ws.receive()
                if message.type is WSMsgType.TEXT and isinstance(message.data, str):
                    event = wire.parse_event(message.data)
                    if isinstance(event, wire.MediaStart):
                        is_json = message.data.lstrip().startswith("{")
                        control = wire.ControlFormat.JSON if is_json else wire.ControlFormat.PLAIN
                        if ignored:
                            log.warning("media: ignored %d messages before MEDIA_START", ignored)
                        return event, control
                    ignored += 1
                elif message.type is WSMsgType.BINARY:
                    ignored += 1
                else:
                    raise MediaConnectionLost(
                        "media websocket closed before MEDIA_START", close_code=ws.close_code
                    )
    except TimeoutError as exc:
        await ws.close()
        raise MediaStartTimeout(f"no MEDIA_START within {start_timeout:.1f} s") from exc
