"""``ClockedSession``: one call's audio on an Asterisk leg that plays what arrives at once.

Over RTP (``rtp/``) and AudioSocket (``audiosocket/``) Asterisk keeps no queue of voicedock's
audio: each frame is written at its due time by the process's second ``MediaClock`` (the one
that writes nothing ahead) and confirmed heard then (``ClockedPlayout``); a barge-in drops only
what waits here. What the caller sends goes to ``CallerAudio`` as on chan_websocket. The
transport subclasses write a frame (``_write_frame``), end the call's media at Asterisk
(``_hang_up``) and close their socket (``_close_transport``); they report what they read with
``caller.on_binary``/``caller.digit`` and that the far side went with ``_peer_closed``.

A session is used as an async context manager; its supervisor holds the output task and any
streaming playback's feeder. Using a closed session raises ``MediaSessionClosed`` if it was
closed here and ``MediaConnectionLost`` if Asterisk ended it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NotRequired, Self, TypedDict

from voicedock.domain.audio import AudioFormat
from voicedock.errors import MediaError
from voicedock.media.clocked_playout import ClockedPlayout
from voicedock.media.framing import silence_frame
from voicedock.media.playback import PlayoutResult
from voicedock.media.transport import CloseReason
from voicedock.pbx.asterisk.media.caller_audio import CallerAudio
from voicedock.pbx.asterisk.media.clock import MediaClock
from voicedock.pbx.asterisk.media.leg_session import LegSession
from voicedock.weak import weak_method

log = logging.getLogger("voicedock.media")


class ClockedOptions(TypedDict):
    """A clocked session's options, as its transports' sessions take them on."""

    label: str
    clock: NotRequired[MediaClock | None]
    inbound_buffer_frames: NotRequired[int]
    max_queued_frames: NotRequired[int]


class ClockedSession(LegSession[ClockedPlayout]):
    def __init__(
        self,
        fmt: AudioFormat,
        *,
        label: str,
        inbound_buffer_frames: int = 250,
        max_queued_frames: int = 250,
        clock: MediaClock | None = None,
    ) -> None:
        """``label``: the media channel's id, for the log; ``clock``: what drives the output
        (default: the running loop's clock that writes nothing ahead)."""
        self.format = fmt
        self.frame_bytes = fmt.frame_bytes()
        self.label = label
        self._clock = clock
        super().__init__(
            CallerAudio(self.frame_bytes, buffer_frames=inbound_buffer_frames, fmt=fmt),
            ClockedPlayout(
                weak_method(self._write_frame),
                weak_method(self._spawn),
                fmt=fmt,
                frame_bytes=self.frame_bytes,
                silence=silence_frame(fmt),
                max_queued_frames=max_queued_frames,
                congested=weak_method(self._congested),
            ),
            tasks=type(self).__name__,
        )

    # --- what a transport provides ----------------------------------------------------------

    def _write_frame(self, frame: bytes) -> None:
        """One frame of the assistant's audio onto the wire, now (inside the clock's visit)."""
        raise NotImplementedError

    async def _hang_up(self) -> None:
        """Ask Asterisk to end the call's media."""
        raise NotImplementedError

    def _close_transport(self) -> None:
        """Close the socket (idempotent)."""
        raise NotImplementedError

    def _congested(self) -> bool:
        """The socket holds what it could not send yet (a frame's visit is then skipped)."""
        return False

    async def _run(self) -> None:
        """What the session does beside its output while it runs (a reading loop), if
        anything; its end does not end the session."""

    # --- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self._tasks.start()
        self._spawn(self._pace())
        self._spawn(self._run())
        return self

    async def aclose(self) -> None:
        """Stop sending, close the socket and wait for the session's tasks (idempotent)."""
        self._end(CloseReason.LOCAL)
        self._close_transport()
        await self._tasks.drain()
        self._closed.set()

    async def hangup(self, close_wait: float = 2.0) -> None:
        """Ask Asterisk to end the call's media, then close."""
        self._check_open()
        self._end(CloseReason.HANGUP)
        try:
            async with asyncio.timeout(close_wait):
                await self._hang_up()
        except (TimeoutError, MediaError, OSError) as exc:
            log.info("media %s: hang-up not confirmed: %s", self.label, exc)
        await self.aclose()

    def peer_gone(self) -> None:
        """Asterisk's channel of this leg is gone: the media is over."""
        self._peer_closed(CloseReason.PEER)

    # --- speaking ---------------------------------------------------------------------------

    async def flush(self) -> PlayoutResult | None:
        """Barge-in: drop what waits to be played (Asterisk holds nothing of it)."""
        self._check_open()
        return self._playout.flush()

    # --- internals --------------------------------------------------------------------------

    async def _pace(self) -> None:
        clock = self._clock or MediaClock.shared(ahead=False)
        pacer = self._playout.pacer
        async with clock.driving(pacer):
            await pacer.wait_stopped()
        if pacer.failure is not None:
            if self.close_reason is None:
                log.warning("media %s: send failed: %s", self.label, pacer.failure)
            self._peer_closed(CloseReason.BROKEN)

    def _peer_closed(self, reason: CloseReason = CloseReason.PEER) -> None:
        """Asterisk ended the media (or the socket broke): nothing more is read or sent."""
        self._end(reason)
        self._close_transport()
        self._closed.set()
