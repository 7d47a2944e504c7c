"""``AudioSocketSession``: one call's audio over an AudioSocket connection Asterisk opened.

The connection reached the session through ``AudioSocketServer``, which read its UUID; from
then on every message it reads is the session's (``on_message``): the caller's audio in the
leg's format (``caller.on_binary``) and an error code (logged). Keys are not read from the
media (builds before Asterisk 20 send none): Asterisk reports them on the caller's channel
over ARI, and the owner hands them to ``caller.digit``. The
assistant's audio goes out one message per 20 ms frame (``ClockedSession``: AudioSocket plays
what arrives at once). Hanging up is the empty hang-up message; Asterisk then ends the leg's
channel and closes the connection, which ends the session.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Unpack

from voicedock.domain.audio import AudioFormat
from voicedock.media.transport import CloseReason
from voicedock.pbx.asterisk.media.audiosocket import wire
from voicedock.pbx.asterisk.media.clocked_session import ClockedOptions, ClockedSession

log = logging.getLogger("voicedock.media")

HIGH_WATER = 64 * 1024
"""Unsent bytes from which the output's visits are skipped (~4 s of 8 kHz audio)."""


class AudioSocketSession(ClockedSession):
    def __init__(
        self,
        transport: asyncio.WriteTransport,
        fmt: AudioFormat,
        **options: Unpack[ClockedOptions],
    ) -> None:
        super().__init__(fmt, **options)
        self._transport = transport
        self._kind = wire.audio_kind(fmt)
        self.messages_ignored = 0

    # --- what the connection reads ----------------------------------------------------------

    def on_message(self, message: wire.Message) -> None:
        kind = message.kind
        if kind == self._kind:
            self.caller.on_binary(message.payload)
        elif kind == wire.KIND_DTMF:
            pass  # the same key comes over ARI
        elif kind == wire.KIND_ERROR:
            log.warning("media %s: Asterisk reported an AudioSocket error", self.label)
        else:
            self.messages_ignored += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self._peer_closed(CloseReason.PEER if exc is None else CloseReason.BROKEN)

    # --- ClockedSession ---------------------------------------------------------------------

    def _write_frame(self, frame: bytes) -> None:
        transport = self._transport
        if transport.is_closing():
            raise ConnectionResetError("AudioSocket connection is closed")
        transport.write(wire.encode(self._kind, frame))

    def _congested(self) -> bool:
        return self._transport.get_write_buffer_size() > HIGH_WATER

    async def _hang_up(self) -> None:
        if not self._transport.is_closing():
            self._transport.write(wire.hangup())
        await self._closed.wait()  # Asterisk closes the connection

    def _close_transport(self) -> None:
        self._transport.close()
