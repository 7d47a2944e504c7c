"""``CallerAudio``: what the caller sends on a chan_websocket connection, as the session reads it.

Asterisk sends the caller's audio as binary messages of ``optimal_frame_size`` bytes, but
sometimes splits a 20 ms frame into shorter messages: the bytes are audio all the same, so
they are re-cut into whole frames, never dropped (``reframed_messages`` counts the messages
that were not whole frames). Each frame is queued for ``frames()`` or, once the owner asks
(``deliver_to``), handed to a consumer inside the connection's callback, without a task woken
per frame. A consumer that falls behind the queue loses the oldest frames (``inbound_dropped``):
live audio cannot wait. The caller's digits (``DTMF_END``) are queued for ``digits()``.

A gap in the caller's audio is silence (``media/gap_filler.py``): while an iteration of
``frames()`` runs, time in which nothing came for 100 ms or more is handed over as silence
frames in the session's format (``gaps``: how many and how much), delivered as the caller's own
frames are, so a far end that sends nothing while its party is silent (silence suppression, a
muted handset, ``transmit_silence = no``) still ends turns and times out. Every transport that
feeds a ``CallerAudio`` (``on_binary`` per message) and names its ``fmt`` gets this.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from voicedock.domain.audio import AudioFormat
from voicedock.media.framing import Framer
from voicedock.media.gap_filler import GAP_AFTER, GapFiller, frames_of
from voicedock.media.transport import put_dropping_oldest

__all__ = ["CallerAudio"]


class CallerAudio:
    """The caller's side of one media session, until ``end``."""

    def __init__(
        self,
        frame_bytes: int,
        *,
        buffer_frames: int = 250,
        on_audio: Callable[[bytes], None] | None = None,
        on_dtmf: Callable[[str], None] | None = None,
        fmt: AudioFormat | None = None,
        fill_gaps_after: float | None = GAP_AFTER,
    ) -> None:
        """``on_audio``: each frame to this consumer from the start (see ``deliver_to``);
        ``on_dtmf``: each digit, as it comes, besides its queue; ``fmt``: the session's wire
        format, whose silence fills the gaps of ``fill_gaps_after`` seconds or more (no
        ``fmt``, or None: gaps stay gaps)."""
        self.frame_bytes = frame_bytes
        self._on_audio = on_audio
        self._on_dtmf = on_dtmf
        self._frames: asyncio.Queue[bytes | None] = asyncio.Queue(buffer_frames)
        self._digits: asyncio.Queue[str | None] = asyncio.Queue(64)
        self._framer = Framer(frame_bytes)
        self.inbound_frames = 0
        self.inbound_dropped = 0
        self.reframed_messages = 0
        """Audio messages that were not whole frames (Asterisk's 58/76-byte pieces)."""
        self.gaps: GapFiller | None = None
        """What fills the gaps in the caller's audio (None: nothing does)."""
        if fmt is not None and fill_gaps_after is not None:
            self.gaps = GapFiller(
                self._deliver,
                bytes([fmt.silence_byte]) * frame_bytes,
                self._received,
                period=fmt.duration_ms(frame_bytes) / 1000,
                after=fill_gaps_after,
            )

    def frames(self) -> AsyncIterator[bytes]:
        """Frames from the caller, ``frame_bytes`` each, until the session closes; while the
        iteration runs, gaps in the caller's audio come as silence frames."""
        return frames_of(self._frames, self.gaps)

    def deliver_to(self, consumer: Callable[[bytes], None] | None) -> None:
        """From now on hand each caller frame to ``consumer`` as it arrives (frames already
        queued first), instead of queuing it for ``frames()``, whose iteration then only waits
        for the end. ``consumer`` must be quick and must not raise. ``None``: frames are
        queued again, and the consumer let go."""
        queue, ended = self._frames, False
        while consumer is not None and not queue.empty():
            frame = queue.get_nowait()
            if frame is None:
                ended = True
            else:
                consumer(frame)
        if ended:
            queue.put_nowait(None)
        self._on_audio = consumer

    async def digits(self) -> AsyncIterator[str]:
        """The digits the caller pressed, until the session closes."""
        while (digit := await self._digits.get()) is not None:
            yield digit

    def on_binary(self, data: bytes) -> None:
        """An audio message from Asterisk (50 a second per call: kept short)."""
        framer = self._framer
        if len(data) == self.frame_bytes and not framer.pending:
            self._frame(data)  # one whole frame: the usual case
            return
        if len(data) % self.frame_bytes or framer.pending:
            self.reframed_messages += 1
        for frame in framer.push(data):
            self._frame(frame)

    def _frame(self, frame: bytes) -> None:
        self.inbound_frames += 1
        self._deliver(frame)

    def _deliver(self, frame: bytes) -> None:
        """A frame to the consumer or the queue (the caller's, or silence for a gap)."""
        if self._on_audio is not None:
            self._on_audio(frame)
        elif not put_dropping_oldest(self._frames, frame):
            self.inbound_dropped += 1

    def _received(self) -> int:
        return self.inbound_frames

    def digit(self, digit: str) -> None:
        """``DTMF_END``: the caller pressed ``digit``."""
        if self._on_dtmf is not None:
            self._on_dtmf(digit)
        put_dropping_oldest(self._digits, digit)

    def end(self) -> None:
        """The session is over: ``frames()`` and ``digits()`` end, no gap is filled."""
        if self.gaps is not None:
            self.gaps.stop()
        put_dropping_oldest(self._frames, None)
        put_dropping_oldest(self._digits, None)
