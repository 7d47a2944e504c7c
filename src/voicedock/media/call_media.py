"""``CallMedia``: the audio of one call as the live conversation sees it, whatever the PBX.

``MediaSession`` (Asterisk chan_websocket) implements it; a FreeSWITCH media session
(mod_audio_stream in, its playback path out) implements the same surface, so the conversation,
its ``MediaSink`` and the call runner never know which PBX carries the call.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Protocol, runtime_checkable

from voicedock.domain.audio import AudioFormat
from voicedock.media.pacer import Pacer
from voicedock.media.playback import Playback, PlayoutResult
from voicedock.media.transport import CloseReason


class CallMedia(Protocol):
    @property
    def format(self) -> AudioFormat:
        """The wire format of both directions (µ-law, A-law, slin*)."""
        ...

    @property
    def closed(self) -> bool: ...

    @property
    def close_reason(self) -> CloseReason | None:
        """Why the media ended: PEER/BROKEN mean the call's media was lost."""
        ...

    @property
    def pacer(self) -> Pacer:
        """The absolute 20 ms clock of outbound frames (``wait_for_room`` for back-pressure)."""
        ...

    def play(self, audio: bytes | AsyncIterable[bytes], *, mark: str | None = None) -> Playback:
        """Queue assistant audio in the wire format; ``Playback.played()`` says when it was
        heard (confirmed by the PBX where it can, else by the clock)."""
        ...

    async def flush(self) -> PlayoutResult | None:
        """Barge-in: drop queued audio here and in the PBX."""
        ...

    async def hangup(self, close_wait: float = 2.0) -> None:
        """Ask the PBX to end the call's media (and so the call) and close."""
        ...

    def inbound_audio(self) -> AsyncIterator[bytes]:
        """Caller frames in the wire format until the media closes."""
        ...

    def dtmf(self) -> AsyncIterator[str]:
        """Digits the caller pressed, until the media closes."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class DirectAudio(Protocol):
    """``CallMedia`` that can hand caller frames to a callback as they arrive (``MediaSession``):
    the conversation reads 50 frames a second per call without a task woken for each."""

    def deliver_audio_to(self, consumer: Callable[[bytes], None] | None) -> None:
        """Each caller frame to ``consumer`` from now on; ``inbound_audio()`` then only ends
        when the media does. ``None``: frames are queued for ``inbound_audio()`` again (the
        consumer is let go)."""
        ...
