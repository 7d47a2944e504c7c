"""``FreeswitchCallMedia``: one call's audio over mod_audio_stream, as a ``CallMedia``.

* **In:** FreeSWITCH connects to ``AudioStreamServer`` and sends the metadata TEXT frame, then
  BINARY L16 frames at the stream rate (``freeswitch.audio_stream_wire``). They are re-cut
  into 20 ms frames and converted to the call's wire format (µ-law, A-law or linear), so the
  conversation sees the same frames as on Asterisk. A gap in them is silence on the wall clock
  (``media/gap_filler.py``): while ``inbound_audio()`` is read, time in which nothing came for
  100 ms or more comes as silence frames.
* **Out:** the assistant's audio goes to the module in ``streamAudio`` messages that FreeSWITCH
  writes to files and plays as queued on the channel, paced by the clock and barged in on with
  ``uuid_break`` (``PlayoutFiles``, ``freeswitch/media/playout_files.py``): ``play``, ``flush``
  and the ``mod_audio_stream::play`` events the PBX adapter hands to ``on_play_event``.
* **Ends:** ``aclose`` stops the stream (the call stays up), ``hangup`` ends the call; a broken
  websocket or a failed send ends the media as lost (``close_reason``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol, Self

import numpy as np
from aiohttp import WSMessage, WSMsgType, web

from voicedock.aio import Closable, Supervisor
from voicedock.domain.audio import AudioFormat
from voicedock.errors import MediaError, PbxError
from voicedock.media.codecs import encode
from voicedock.media.errors import MediaConnectionLost, MediaSessionClosed
from voicedock.media.framing import Framer, silence_frame
from voicedock.media.gap_filler import GAP_AFTER, GapFiller, frames_of
from voicedock.media.pacer import Pacer
from voicedock.media.playback import Playback, PlayoutResult
from voicedock.media.transport import TRANSPORT_ERRORS, CloseReason, put_dropping_oldest
from voicedock.pbx.freeswitch.media.audio_stream_wire import parse_metadata
from voicedock.pbx.freeswitch.media.playout_files import (
    DEFAULT_PLAYOUT,
    ChannelPlayback,
    FilePlayout,
    PlayoutFiles,
)

log = logging.getLogger("voicedock.media.freeswitch")


class PlaybackControl(ChannelPlayback, Protocol):
    """The ESL side of one channel's media (implemented by the FreeSWITCH adapter)."""

    async def hangup(self) -> None: ...  # uuid_kill <uuid>
    async def stop_stream(self) -> None: ...  # uuid_audio_stream <uuid> stop


class FreeswitchCallMedia(Closable):
    def __init__(
        self,
        ws: web.WebSocketResponse,
        control: PlaybackControl,
        fmt: AudioFormat,
        *,
        first: WSMessage | None = None,
        playout: FilePlayout = DEFAULT_PLAYOUT,
        inbound_buffer_frames: int = 250,
        fill_gaps_after: float | None = GAP_AFTER,
    ) -> None:
        """``playout``: how the call's audio is played as files; ``fill_gaps_after``: how long
        FreeSWITCH may send nothing before the gap is silence (None: never)."""
        self._ws = ws
        self._first = first  # FreeSWITCH's first message, read to know the stream was up
        self._control = control
        self.format = fmt
        self.stream_rate = fmt.sample_rate  # L16 both ways at the call's rate
        self.frame_bytes = fmt.frame_bytes()
        self._l16_framer = Framer(self.stream_rate // 50 * 2)
        self._inbound: asyncio.Queue[bytes | None] = asyncio.Queue(inbound_buffer_frames)
        self._dtmf: asyncio.Queue[str | None] = asyncio.Queue(64)
        self._tasks = Supervisor("audio stream", log)
        # The websocket's and the channel's, not the media's.
        self._playout = PlayoutFiles(fmt, self._tasks, ws.send_str, control, playout)
        self.metadata: str | None = None
        self.close_reason: CloseReason | None = None
        self.inbound_frames = 0
        self.inbound_dropped = 0
        self.gaps = None if fill_gaps_after is None else self._gap_filler(fill_gaps_after)
        """What fills the gaps in the caller's audio (None: nothing does)."""
        self._closed = asyncio.Event()
        self._receive_ended = asyncio.Event()

    def _gap_filler(self, after: float) -> GapFiller:
        """Silence for the caller's audio once FreeSWITCH sent nothing for ``after`` seconds."""
        return GapFiller(
            self._deliver,
            silence_frame(self.format),
            self._received,
            period=self.format.duration_ms(self.frame_bytes) / 1000,
            after=after,
        )

    # --- lifecycle ---

    async def __aenter__(self) -> Self:
        await self._tasks.start()
        for coro in (self._receive_loop(), self._pace(), self._playout.queue_files()):
            self._tasks.spawn(coro)
        return self

    async def aclose(self) -> None:
        """Stop the stream (the call stays up), close the websocket; idempotent."""
        if self._closed.is_set():
            return
        mine = self.close_reason in (None, CloseReason.LOCAL)
        self._end(CloseReason.LOCAL)
        if mine:
            with contextlib.suppress(PbxError):
                if self._playout.timeline.ahead() > 0:
                    await self._control.stop_playback()
                await self._control.stop_stream()
        with contextlib.suppress(*TRANSPORT_ERRORS):
            await self._ws.close()
        await self._tasks.aclose()
        self._closed.set()

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    @property
    def pacer(self) -> Pacer:
        return self._playout.pacer

    # --- events from the PBX adapter ---

    def on_play_event(self, file: str) -> None:
        """``mod_audio_stream::play``: FreeSWITCH wrote our next chunk to ``file``."""
        if not self.closed:
            self._playout.on_play_event(file)

    def on_dtmf(self, digit: str) -> None:
        if not self.closed:
            put_dropping_oldest(self._dtmf, digit)

    # --- speaking ---

    def play(self, audio: bytes | AsyncIterable[bytes], *, mark: str | None = None) -> Playback:
        self._check_open()
        return self._playout.play(audio, mark=mark)

    async def flush(self) -> PlayoutResult | None:
        """Barge-in: drop our queue and FreeSWITCH's (``uuid_break all``)."""
        self._check_open()
        return await self._playout.flush()

    async def hangup(self, close_wait: float = 2.0) -> None:
        """End the call (``uuid_kill``); FreeSWITCH then closes the stream."""
        self._check_open()
        self._end(CloseReason.HANGUP)
        with contextlib.suppress(PbxError):
            await self._control.hangup()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(close_wait):
                await self._receive_ended.wait()
        await self.aclose()

    # --- listening ---

    def inbound_audio(self) -> AsyncIterator[bytes]:
        """The caller's frames until the media ends; gaps in them come as silence frames."""
        return frames_of(self._inbound, self.gaps)

    async def dtmf(self) -> AsyncIterator[str]:
        while (digit := await self._dtmf.get()) is not None:
            yield digit

    # --- internals ---

    def _check_open(self) -> None:
        if self.close_reason in (CloseReason.LOCAL, CloseReason.HANGUP):
            raise MediaSessionClosed("media was closed")
        if self.close_reason is not None:
            raise MediaConnectionLost(f"audio stream lost ({self.close_reason})")

    def _end(self, reason: CloseReason) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        self._playout.end()
        if self.gaps is not None:
            self.gaps.stop()
        put_dropping_oldest(self._inbound, None)
        put_dropping_oldest(self._dtmf, None)

    async def _receive_loop(self) -> None:
        try:
            if self._first is None or self._on_message(self._first):
                async for message in self._ws:
                    if not self._on_message(message):
                        break
        except TRANSPORT_ERRORS as exc:
            log.warning("audio stream lost: %s", exc)
            self._end(CloseReason.BROKEN)
        finally:
            self._end(CloseReason.PEER)
            self._receive_ended.set()

    def _on_message(self, message: WSMessage) -> bool:
        """One message of FreeSWITCH's; False: the stream broke."""
        if message.type is WSMsgType.BINARY:
            self._on_audio(message.data)
        elif message.type is WSMsgType.TEXT:
            if self.metadata is None:
                self.metadata = parse_metadata(message.data).text
        elif message.type is WSMsgType.ERROR:
            self._end(CloseReason.BROKEN)
            return False
        return True

    def _on_audio(self, data: bytes) -> None:
        for frame in self._l16_framer.push(data):
            self.inbound_frames += 1
            if not self.format.is_linear:
                frame = encode(self.format, np.frombuffer(frame, dtype="<i2"))
            self._deliver(frame)

    def _deliver(self, frame: bytes) -> None:
        """A frame to ``inbound_audio()`` (the caller's, or silence for a gap)."""
        if not put_dropping_oldest(self._inbound, frame):
            self.inbound_dropped += 1

    def _received(self) -> int:
        return self.inbound_frames

    async def _pace(self) -> None:
        try:
            await self._playout.pacer.run()
        except (*TRANSPORT_ERRORS, MediaError) as exc:
            if self.close_reason is None:
                log.warning("audio stream: send failed: %s", exc)
            self._end(CloseReason.BROKEN)
        finally:
            if self.close_reason is None or self.close_reason is CloseReason.BROKEN:
                with contextlib.suppress(*TRANSPORT_ERRORS):
                    await self._ws.close()
