"""``LegSession``: what every Asterisk media session of a call's leg shares, whatever carries
it (chan_websocket's ``MediaSession``, RTP and AudioSocket's ``ClockedSession``): its close
state, the caller's audio and keys (``CallerAudio``), the assistant's playbacks and the
session's tasks. A transport adds how it reads, writes and hangs up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Generic, Protocol, TypeVar

from voicedock.aio import Coro, Supervisor
from voicedock.errors import MediaError
from voicedock.media.errors import MediaConnectionLost, MediaSessionClosed
from voicedock.media.pacer import Pacer
from voicedock.media.playback import Playback
from voicedock.media.transport import CloseReason
from voicedock.pbx.asterisk.media.caller_audio import CallerAudio

__all__ = ["LegSession"]

log = logging.getLogger("voicedock.media")


class Playout(Protocol):
    """The session's playbacks (``ClockedPlayout``, ``PlayoutMarks``)."""

    @property
    def pacer(self) -> Pacer: ...

    def play(self, audio: bytes | AsyncIterable[bytes], *, mark: str | None = None) -> Playback: ...

    def end(self) -> None: ...


P = TypeVar("P", bound=Playout)


class LegSession(Generic[P]):
    def __init__(self, caller: CallerAudio, playout: P, *, tasks: str) -> None:
        """``tasks``: the name of the session's task group, for the log."""
        self.caller = caller
        self._playout = playout
        self._tasks = Supervisor(tasks, log)
        self._closed = asyncio.Event()
        self.close_reason: CloseReason | None = None
        self.close_code: int | None = None  # the peer's, where its transport has one

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
        await self._tasks.aclose()

    async def aclose(self) -> None:
        raise NotImplementedError

    async def wait_closed(self) -> CloseReason:
        await self._closed.wait()
        assert self.close_reason is not None
        return self.close_reason

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    # --- speaking ---------------------------------------------------------------------------

    def play(self, audio: bytes | AsyncIterable[bytes], *, mark: str | None = None) -> Playback:
        """Queue assistant audio (wire format bytes, any chunking) behind what is queued already."""
        self._check_open()
        return self._playout.play(audio, mark=mark)

    @property
    def pacer(self) -> Pacer:
        return self._playout.pacer

    # --- listening --------------------------------------------------------------------------

    def inbound_audio(self) -> AsyncIterator[bytes]:
        """Frames from the caller, ``frame_bytes`` each, until the session closes.

        If the consumer falls behind by more than ``inbound_buffer_frames`` the oldest frames are
        dropped (counted in ``caller.inbound_dropped``): live audio cannot wait.
        """
        return self.caller.frames()

    def deliver_audio_to(self, consumer: Callable[[bytes], None] | None) -> None:
        """From now on hand each caller frame to ``consumer`` as it arrives, inside the
        connection's callback (frames already queued first), instead of queuing it for
        ``inbound_audio()``, whose iteration then only waits for the end of the media: no task
        is woken per frame. ``consumer`` must be quick and must not raise. ``None``: frames are
        queued again, and the consumer let go."""
        self.caller.deliver_to(consumer)

    def dtmf(self) -> AsyncIterator[str]:
        """DTMF digits the caller pressed, until the session closes."""
        return self.caller.digits()

    # --- internals --------------------------------------------------------------------------

    def _spawn(self, coro: Coro[None]) -> None:
        if not self._tasks.running:
            coro.close()
            raise MediaError("use the session as an async context manager")
        self._tasks.spawn(coro)

    def _end(self, reason: CloseReason) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        self._playout.end()
        self.caller.end()

    def _check_open(self) -> None:
        if self.close_reason in (CloseReason.LOCAL, CloseReason.HANGUP):
            raise MediaSessionClosed("media session was closed")
        if self.close_reason is not None:
            raise MediaConnectionLost(
                f"media connection lost ({self.close_reason})", close_code=self.close_code
            )
