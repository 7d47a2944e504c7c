"""The websocket types a chan_websocket session runs over, and the MEDIA_START handshake.

Server mode (we dial Asterisk) runs over voicedock's own ``WebSocketClient``, which hands each
message over as it arrives; client mode (Asterisk dials us) over aiohttp's
``web.WebSocketResponse``, served by ``voicedock.pbx.asterisk.media.acceptor``.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSMsgType, web

from voicedock.media.errors import MediaConnectionLost, MediaProtocolError, MediaStartTimeout
from voicedock.pbx.asterisk.media import chan_websocket as wire
from voicedock.pbx.asterisk.media.websocket_client import WebSocketClient

log = logging.getLogger("voicedock.media")

MediaWebSocket = WebSocketClient | web.WebSocketResponse


async def read_media_start(
    ws: MediaWebSocket, start_timeout: float, *, max_bytes: int | None = None
) -> tuple[wire.MediaStart, wire.ControlFormat]:
    """Read until MEDIA_START (always Asterisk's first TEXT frame); audio before it is ignored.

    Returns the MEDIA_START and the control format Asterisk uses on this channel, which is the
    format our commands must use too. ``max_bytes`` (a peer not yet known to be Asterisk, as on
    client mode's ``/media``): at most that many bytes before and with the MEDIA_START, and a
    first TEXT frame that is not one ends the handshake at once (``MediaProtocolError``).
    The caller closes the websocket on any error.
    """
    ignored = received = 0
    try:
        async with asyncio.timeout(start_timeout):
            while True:
                message = await ws.receive()
                if message.type is WSMsgType.TEXT and isinstance(message.data, str):
                    received += len(message.data.encode())
                    _check_budget(received, max_bytes)
                    event = wire.parse_event(message.data)
                    if isinstance(event, wire.MediaStart):
                        is_json = message.data.lstrip().startswith("{")
                        control = wire.ControlFormat.JSON if is_json else wire.ControlFormat.PLAIN
                        if ignored:
                            log.warning("media: ignored %d messages before MEDIA_START", ignored)
                        return event, control
                    if max_bytes is not None:
                        raise MediaProtocolError("the first text message is not a MEDIA_START")
                    ignored += 1
                elif message.type is WSMsgType.BINARY:
                    if isinstance(message.data, bytes | bytearray):
                        received += len(message.data)
                    _check_budget(received, max_bytes)
                    ignored += 1
                else:
                    raise MediaConnectionLost(
                        "media websocket closed before MEDIA_START", close_code=ws.close_code
                    )
    except TimeoutError as exc:
        raise MediaStartTimeout(f"no MEDIA_START within {start_timeout:.1f} s") from exc


def _check_budget(received: int, max_bytes: int | None) -> None:
    if max_bytes is not None and received > max_bytes:
        raise MediaProtocolError(f"more than {max_bytes} bytes before a MEDIA_START")
