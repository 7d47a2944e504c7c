"""``FreeswitchCallMedia``: one call's audio over mod_audio_stream, as a ``CallMedia``.

* **In:** FreeSWITCH connects to ``AudioStreamServer`` and sends the metadata TEXT frame, then
  BINARY L16 frames at the stream rate (``freeswitch.audio_stream_wire``). They are re-cut
  into 20 ms frames and converted to the call's wire format (µ-law, A-law or linear), so the
  conversation sees the same frames as on Asterisk.
* **Out:** the community mod_audio_stream does not play what it receives: it writes each
  ``streamAudio`` message to a file and fires ``mod_audio_stream::play``; the PBX adapter hands
  that event to ``on_play_event`` and we queue ``playback`` of the file on the channel
  (``PlaybackControl.play_file``), behind the files still playing, so the channel plays them
  back to back. Audio goes out in chunks (``chunk_ms``), kept at most ``lead_ms`` ahead of what
  the caller hears so that barge-in has little to throw away.
* **Barge-in:** ``flush`` drops our queue and runs ``uuid_break <uuid> all``; play events of
  chunks sent before the flush are ignored when they arrive (the k-th play event belongs to the
  k-th ``streamAudio`` message: the module numbers its files in order).
* **Played:** by the clock (``PlayoutTimeline``) from the moment each file is queued on the
  channel; FreeSWITCH reports nothing per frame.

The ``Pacer`` is reused as the queue of utterances (back-pressure, ``clear``) and driven on its
own virtual clock (``Pacer.run``, not the shared 20 ms ``MediaClock``) whose ``sleep`` waits only
while FreeSWITCH already holds ``lead_ms`` of audio. Its tick only collects frames into chunks;
the chunks a tick completed are sent right after it (``after_tick``), in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol, Self

import numpy as np
from aiohttp import WSMessage, WSMsgType, web

from voicedock.aio import Closable, Supervisor
from voicedock.domain.audio import AudioFormat
from voicedock.errors import MediaError, PbxError
from voicedock.media.codecs import decode, encode
from voicedock.media.errors import MediaConnectionLost, MediaSessionClosed
from voicedock.media.framing import Framer
from voicedock.media.pacer import FRAME_PERIOD, Pacer, Utterance
from voicedock.media.playback import Playback, PlayoutResult, feed_playback, finish_playback
from voicedock.media.transport import TRANSPORT_ERRORS, CloseReason, put_dropping_oldest
from voicedock.pbx.freeswitch.media.audio_stream_wire import encode_stream_audio, parse_metadata
from voicedock.pbx.freeswitch.media.playout import PlayoutTimeline, Segment
from voicedock.weak import weak_method

log = logging.getLogger("voicedock.media.freeswitch")

_auto_ids = itertools.count(1)


class PlaybackControl(Protocol):
    """The ESL side of one channel's media (implemented by the FreeSWITCH adapter)."""

    async def play_file(self, path: str) -> None: ...  # queue playback <path> on the channel
    async def stop_playback(self) -> None: ...  # uuid_break <uuid> all
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
        chunk_ms: int = 400,
        lead_ms: int = 1200,
        inbound_buffer_frames: int = 250,
        max_queued_frames: int = 250,
    ) -> None:
        self._ws = ws
        self._first = first  # FreeSWITCH's first message, read to know the stream was up
        self._control = control
        self.format = fmt
        self.stream_rate = fmt.sample_rate  # L16 both ways at the call's rate
        self.frame_bytes = fmt.frame_bytes()
        self._chunk_frames = max(1, chunk_ms // 20)
        self._lead = lead_ms / 1000
        self._l16_framer = Framer(self.stream_rate // 50 * 2)
        self._inbound: asyncio.Queue[bytes | None] = asyncio.Queue(inbound_buffer_frames)
        self._dtmf: asyncio.Queue[str | None] = asyncio.Queue(64)
        self._virtual_now = 0.0
        self._pacer = Pacer(  # its callbacks never keep the media alive
            weak_method(self._take_frame),
            b"",
            send_silence=False,
            on_frame_sent=weak_method(self._frame_taken),
            on_utterance_done=weak_method(self._utterance_done),
            after_tick=weak_method(self._send_cut_chunks),
            max_queued_frames=max_queued_frames,
            clock=weak_method(self._now),
            sleep=weak_method(self._sleep_until_room),
        )
        self.timeline = PlayoutTimeline()
        self._playbacks: dict[str, Playback] = {}
        self._chunk = bytearray()
        self._chunk_segments: list[Segment] = []
        self._cut: list[str] = []  # streamAudio messages cut by a tick, not yet sent
        self._messages_cut = 0
        self._files: asyncio.Queue[tuple[int, str]] = asyncio.Queue()  # (message index, file)
        self._esl_lock = asyncio.Lock()  # playbacks and uuid_break stay in order
        self.messages_sent = 0
        self._play_events = 0
        self._discard_before = 0
        self.metadata: str | None = None
        self.close_reason: CloseReason | None = None
        self.inbound_frames = 0
        self.inbound_dropped = 0
        self._tasks = Supervisor("audio stream", log)
        self._closed = asyncio.Event()
        self._receive_ended = asyncio.Event()

    # --- lifecycle ---

    async def __aenter__(self) -> Self:
        await self._tasks.start()
        for coro in (self._receive_loop(), self._pace(), self._playback_loop()):
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
                if self.timeline.ahead() > 0:
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
        return self._pacer

    # --- events from the PBX adapter ---

    def on_play_event(self, file: str) -> None:
        """``mod_audio_stream::play``: FreeSWITCH wrote our next chunk to ``file``."""
        index, self._play_events = self._play_events, self._play_events + 1
        if index >= self._discard_before and not self.closed:
            self._files.put_nowait((index, file))

    def on_dtmf(self, digit: str) -> None:
        if not self.closed:
            put_dropping_oldest(self._dtmf, digit)

    # --- speaking ---

    def play(self, audio: bytes | AsyncIterable[bytes], *, mark: str | None = None) -> Playback:
        self._check_open()
        if mark is None:
            mark = f"vd:{next(_auto_ids)}"
        elif mark in self._playbacks or len(mark) > 80:
            raise MediaError("mark must be unique and at most 80 characters")
        playback = Playback(mark, self._pacer.open_utterance(mark), FRAME_PERIOD * 1000)
        self._playbacks[mark] = playback
        framer = Framer(self.frame_bytes, pad_byte=self.format.silence_byte)
        if isinstance(audio, bytes | bytearray | memoryview):
            self._pacer.extend(playback.utterance, framer.push(audio))
            finish_playback(self._pacer, playback, framer)
        elif not self._tasks.running:
            raise MediaError("use the media as an async context manager")
        else:
            self._tasks.spawn(feed_playback(self._pacer, playback, framer, audio))
        return playback

    async def flush(self) -> PlayoutResult | None:
        """Barge-in: drop our queue and FreeSWITCH's (``uuid_break all``)."""
        self._check_open()
        self._pacer.clear()
        self._chunk.clear()
        self._chunk_segments.clear()
        self._cut.clear()
        self._messages_cut = self.messages_sent
        self._discard_before = self.messages_sent  # their play events are stale when they come
        while not self._files.empty():
            self._files.get_nowait()
        async with self._esl_lock:
            try:
                await self._control.stop_playback()
            except PbxError as exc:
                log.warning("audio stream: uuid_break failed: %s", exc)
        self.timeline.clear()
        current: PlayoutResult | None = None
        for playback in list(self._playbacks.values()):
            if playback.done:
                continue
            result = playback.resolve(completed=False)
            if current is None and playback.frames_sent:
                current = result
        self._playbacks.clear()
        return current

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

    async def inbound_audio(self) -> AsyncIterator[bytes]:
        while (frame := await self._inbound.get()) is not None:
            yield frame

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
        self._pacer.stop()
        for playback in self._playbacks.values():
            playback.resolve(completed=False)
        self._playbacks.clear()
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
            if not put_dropping_oldest(self._inbound, frame):
                self.inbound_dropped += 1

    async def _pace(self) -> None:
        try:
            await self._pacer.run()
        except (*TRANSPORT_ERRORS, MediaError) as exc:
            if self.close_reason is None:
                log.warning("audio stream: send failed: %s", exc)
            self._end(CloseReason.BROKEN)
        finally:
            if self.close_reason is None or self.close_reason is CloseReason.BROKEN:
                with contextlib.suppress(*TRANSPORT_ERRORS):
                    await self._ws.close()

    async def _playback_loop(self) -> None:
        while True:
            index, path = await self._files.get()
            async with self._esl_lock:
                if index < self._discard_before:
                    continue  # a barge-in came while it waited for the lock
                try:
                    await self._control.play_file(path)
                except PbxError as exc:
                    log.warning("audio stream: playback failed: %s", exc)
                    self.timeline.lost(index)
                else:
                    self.timeline.queued(index)

    # --- the pacer's side: frames → chunks → streamAudio ---

    def _now(self) -> float:
        """The pacer's virtual clock: how far its sleeps have taken it."""
        return self._virtual_now

    async def _sleep_until_room(self, delay: float) -> None:
        self._virtual_now += delay
        while not self._pacer.stopped():
            self.timeline.advance()
            if self._pacer.queued_frames == 0:
                if self.timeline.ahead() <= 2 * FRAME_PERIOD:
                    self._cut_chunk()  # slow TTS: send what we hold before FS runs dry
                    await self._send_cut_chunks()
                await asyncio.sleep(FRAME_PERIOD)
                return
            excess = self.timeline.ahead() - self._lead
            if excess <= 0:
                await asyncio.sleep(0)
                return
            await asyncio.sleep(min(excess, FRAME_PERIOD))

    def _take_frame(self, frame: bytes) -> None:
        self._chunk += frame

    def _frame_taken(self, utterance: Utterance, _due: float) -> None:
        playback = self._playbacks.get(utterance.id)
        if playback is not None:
            last = self._chunk_segments[-1] if self._chunk_segments else None
            if last is not None and last.playback is playback:
                last.frames += 1
            else:
                segment = Segment(playback, playback.frames_sent - 1, 1)
                self._chunk_segments.append(segment)
        if len(self._chunk) >= self._chunk_frames * self.frame_bytes:
            self._cut_chunk()

    def _utterance_done(self, utterance: Utterance) -> None:
        self._cut_chunk()
        playback = self._playbacks.get(utterance.id)
        if playback is not None:
            self.timeline.finish(playback)
        self._playbacks = {k: p for k, p in self._playbacks.items() if not p.done}

    def _cut_chunk(self) -> None:
        """The frames collected so far become the next streamAudio message (sent after the
        tick by ``_send_cut_chunks``)."""
        if not self._chunk:
            return
        pcm = bytes(self._chunk)
        segments, self._chunk_segments = self._chunk_segments, []
        self._chunk.clear()
        if not self.format.is_linear:
            pcm = decode(self.format, pcm).astype("<i2").tobytes()
        # Before the send: its play event may come while the send is still being awaited.
        self.timeline.sent(self._messages_cut, segments)
        self._messages_cut += 1
        self._cut.append(encode_stream_audio(pcm, self.stream_rate))

    async def _send_cut_chunks(self) -> None:
        while self._cut:
            message = self._cut.pop(0)
            self.messages_sent += 1  # the module numbers its files in the order it got them
            await self._ws.send_str(message)
