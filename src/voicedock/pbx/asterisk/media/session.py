"""``MediaSession``: one call's audio over an Asterisk chan_websocket connection.

Server mode: ``async with MediaSession.connect(url) as media`` (``ws://<ast>/media/<id>``), then
``media.started``, ``media.inbound_audio()``, ``media.play(bytes or async iterator)`` →
``Playback.played()``, ``media.flush()`` for barge-in, ``media.dtmf()``, ``media.hangup()``.
Client mode (Asterisk dials us) goes through ``acceptor.MediaAcceptor``.

A supervisor owned by the session holds the receive loop, the output task and any
streaming-playback feeders. Output is driven by the process's ``MediaClock``: the output task
attaches the session's pacer to it and waits; the clock visits the session every 20 ms and,
once 60 ms or less of its audio is queued at Asterisk, the pacer writes up to 140 ms ahead (the
frames and the marks between them) synchronously through a ``FrameWriter``, in one write.
Neither task lets an exception escape: when one ends, it stops the other and records why
(``close_reason``), so a broken call never cancels the code that owns it. Using a closed session
raises ``MediaSessionClosed`` if we closed it and ``MediaConnectionLost`` if the peer did.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self

from aiohttp import WSMsgType

from voicedock.aio import Supervisor
from voicedock.domain.audio import AudioFormat, format_by_name
from voicedock.errors import MediaError
from voicedock.media.errors import (
    MediaConnectionLost,
    MediaProtocolError,
    MediaSessionClosed,
)
from voicedock.media.framing import Framer, silence_frame
from voicedock.media.pacer import Pacer, Utterance
from voicedock.media.playback import Playback, PlayoutResult, feed_playback, finish_playback
from voicedock.media.transport import TRANSPORT_ERRORS, CloseReason, put_dropping_oldest
from voicedock.pbx.asterisk.media import chan_websocket as wire
from voicedock.pbx.asterisk.media.clock import MediaClock
from voicedock.pbx.asterisk.media.frame_writer import FrameWriter
from voicedock.pbx.asterisk.media.handshake import MediaWebSocket, read_media_start
from voicedock.pbx.asterisk.media.websocket_client import WebSocketClient

log = logging.getLogger("voicedock.media")

_auto_ids = itertools.count(1)
_ENDED = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED})


class MediaSession:
    def __init__(
        self,
        ws: MediaWebSocket,
        started: wire.MediaStart,
        control_format: wire.ControlFormat,
        *,
        checkpoint_frames: int = 10,
        send_silence: bool = True,
        on_audio: Callable[[bytes], None] | None = None,
        on_dtmf: Callable[[str], None] | None = None,
        inbound_buffer_frames: int = 250,
        max_queued_frames: int = 250,
        clock: MediaClock | None = None,
    ) -> None:
        """``clock`` drives the output (default: the shared clock of the running loop)."""
        fmt = format_by_name(started.format)
        if fmt is None or started.optimal_frame_size <= 0:
            raise MediaProtocolError(f"unsupported media format {started.format!r}")
        self._ws = ws
        silence = silence_frame(fmt, started.ptime)
        self._writer = FrameWriter(ws)
        self._clock = clock
        self.started = started
        self.format: AudioFormat = fmt
        self.control_format = control_format
        self.frame_bytes = started.optimal_frame_size
        self.frame_ms = fmt.duration_ms(self.frame_bytes)
        self._checkpoint_frames = checkpoint_frames
        self._on_audio = on_audio
        self._on_dtmf = on_dtmf
        self._inbound: asyncio.Queue[bytes | None] = asyncio.Queue(inbound_buffer_frames)
        self._dtmf: asyncio.Queue[str | None] = asyncio.Queue(64)
        self._pacer = Pacer(
            self._writer.binary,
            silence,
            send_silence=send_silence,
            on_utterance_done=self._utterance_done,
            on_frame_sent=self._frame_sent,
            max_queued_frames=max_queued_frames,
            congested=self._writer.is_congested,
            flush_writes=self._writer.flush,
            on_speech_start=self._cut_silence_ahead,
        )
        self._playbacks: dict[str, Playback] = {}
        self._checkpoints: dict[str, tuple[Playback, int]] = {}
        self._marks_queued: dict[str, None] = {}  # written, not reported processed yet, in order
        self._status_waiters: list[asyncio.Future[wire.Status]] = []
        self._tasks = Supervisor("media session", log)
        self._closed = asyncio.Event()
        self.entered = asyncio.Event()
        """Set once the session runs (its owner entered ``async with``)."""
        self.close_reason: CloseReason | None = None
        self.close_code: int | None = None
        self.inbound_frames = 0
        self.inbound_dropped = 0
        self.reframed_messages = 0
        """Audio messages that were not whole frames (Asterisk's 58/76-byte pieces)."""
        # Asterisk sometimes splits the 20 ms frames of its stream into shorter messages: the
        # bytes are audio all the same, so they are re-cut into whole frames, never dropped.
        self._inbound_framer = Framer(self.frame_bytes)
        self.ignored_messages = 0

    # --- lifecycle ---

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        url: str,
        *,
        start_timeout: float = 5.0,
        **options: Any,
    ) -> AsyncIterator[MediaSession]:
        """Server mode: open ``ws://<asterisk>/media/<connection id>`` and wait for MEDIA_START."""
        try:
            ws = await WebSocketClient.connect(url, protocols=("media",))
        except TRANSPORT_ERRORS as exc:
            raise MediaConnectionLost(f"cannot open media websocket: {exc}") from exc
        try:
            started, control_format = await read_media_start(ws, start_timeout)
            async with cls(ws, started, control_format, **options) as session:
                yield session
        finally:
            await ws.close()

    async def __aenter__(self) -> Self:
        await self._tasks.start()
        self._spawn(self._receive_loop())
        self._spawn(self._pace())
        self.entered.set()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
        await self._tasks.aclose()

    async def aclose(self) -> None:
        """Stop sending, close the websocket and wait for the session's tasks (idempotent)."""
        self._end(CloseReason.LOCAL)
        with contextlib.suppress(*TRANSPORT_ERRORS):
            await self._ws.close()
        await self._tasks.drain()
        self._closed.set()

    async def wait_closed(self) -> CloseReason:
        await self._closed.wait()
        assert self.close_reason is not None
        return self.close_reason

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    # --- speaking ---

    def play(self, audio: bytes | AsyncIterable[bytes], *, mark: str | None = None) -> Playback:
        """Queue assistant audio (wire format bytes, any chunking) behind what is queued already."""
        self._check_open()
        if mark is None:
            mark = f"vd:{next(_auto_ids)}"
        elif len(wire.validate_correlation_id(mark)) > 80 or mark in self._playbacks:
            raise MediaProtocolError("mark must be unique and at most 80 characters")
        playback = Playback(mark, self._pacer.open_utterance(mark), self.frame_ms)
        self._playbacks[mark] = playback
        framer = Framer(self.frame_bytes, pad_byte=self.format.silence_byte)
        if isinstance(audio, bytes | bytearray | memoryview):
            self._pacer.extend(playback.utterance, framer.push(audio))
            finish_playback(self._pacer, playback, framer)
        else:
            self._spawn(feed_playback(self._pacer, playback, framer, audio))
        return playback

    async def flush(self) -> PlayoutResult | None:
        """Barge-in: drop everything queued here and in Asterisk.

        Returns the outcome of the utterance the caller was hearing (None if none was playing);
        every unfinished playback resolves as not completed.
        """
        self._check_open()
        self._pacer.clear()
        await self._send_command(wire.Command.FLUSH_MEDIA)
        await self._send_command(wire.Command.CONTINUE_MEDIA)  # FLUSH does not unpause
        self._pacer.restart()  # what was written ahead is gone: silence from now on
        current: PlayoutResult | None = None
        for playback in list(self._playbacks.values()):
            result = playback.resolve(completed=False)
            if current is None and playback.frames_sent:
                current = result
        self._playbacks.clear()
        self._checkpoints.clear()
        self._marks_queued.clear()
        return current

    async def hangup(self, close_wait: float = 2.0) -> None:
        """Ask Asterisk to hang up the media channel; it then closes the socket."""
        self._check_open()
        self._end(CloseReason.HANGUP, stop_pacer=True)
        with contextlib.suppress(*TRANSPORT_ERRORS):
            await self._ws.send_str(wire.encode_command(wire.Command.HANGUP, self.control_format))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), close_wait)
        await self.aclose()

    async def get_status(self, reply_wait: float = 2.0) -> wire.Status:
        self._check_open()
        waiter: asyncio.Future[wire.Status] = asyncio.get_running_loop().create_future()
        self._status_waiters.append(waiter)
        await self._send_command(wire.Command.GET_STATUS)
        try:
            return await asyncio.wait_for(waiter, reply_wait)
        finally:
            if waiter in self._status_waiters:
                self._status_waiters.remove(waiter)

    @property
    def pacer(self) -> Pacer:
        return self._pacer

    # --- listening ---

    async def inbound_audio(self) -> AsyncIterator[bytes]:
        """Frames from the caller, ``frame_bytes`` each, until the session closes.

        If the consumer falls behind by more than ``inbound_buffer_frames`` the oldest frames are
        dropped (counted in ``inbound_dropped``): live audio cannot wait.
        """
        while (frame := await self._inbound.get()) is not None:
            yield frame

    def deliver_audio_to(self, consumer: Callable[[bytes], None]) -> None:
        """From now on hand each caller frame to ``consumer`` as it arrives, inside the
        connection's callback (frames already queued first), instead of queuing it for
        ``inbound_audio()``, whose iteration then only waits for the end of the media: no task
        is woken per frame. ``consumer`` must be quick and must not raise."""
        queue, ended = self._inbound, False
        while not queue.empty():
            frame = queue.get_nowait()
            if frame is None:
                ended = True
            else:
                consumer(frame)
        if ended:
            queue.put_nowait(None)
        self._on_audio = consumer

    async def dtmf(self) -> AsyncIterator[str]:
        """DTMF digits the caller pressed (DTMF_END), until the session closes."""
        while (digit := await self._dtmf.get()) is not None:
            yield digit

    # --- internals: tasks ---

    def _spawn(self, coro: Any) -> None:
        if not self._tasks.running:
            coro.close()
            raise MediaError("use the session as an async context manager")
        self._tasks.spawn(coro)

    async def _receive_loop(self) -> None:
        ws, binary, text, ended = self._ws, WSMsgType.BINARY, WSMsgType.TEXT, _ENDED
        try:
            if isinstance(ws, WebSocketClient):
                # Messages are handed over as they arrive, no task wake-up per frame.
                ws.deliver_to(self._on_binary, self._on_text)
                await ws.wait_closed()
                if ws.failure is not None:
                    log.warning("media %s: connection failed: %s", self._label, ws.failure)
                    self._end(CloseReason.BROKEN)
                return
            while True:
                message = await ws.receive()
                kind = message.type
                if kind is binary:
                    self._on_binary(message.data)
                elif kind is text:
                    self._on_event(wire.parse_event(message.data))
                elif kind is WSMsgType.ERROR:
                    log.warning("media %s: websocket error: %s", self._label, message.data)
                    self._end(CloseReason.BROKEN)
                    break
                elif kind in ended:
                    break
        except TRANSPORT_ERRORS as exc:
            log.warning("media %s: connection lost: %s", self._label, exc)
            self._end(CloseReason.BROKEN)
        finally:
            self.close_code = self._ws.close_code
            self._end(CloseReason.PEER)
            with contextlib.suppress(*TRANSPORT_ERRORS):
                await self._ws.close()
            self._closed.set()

    async def _pace(self) -> None:
        clock = self._clock or MediaClock.shared()
        try:
            async with clock.driving(self._pacer):
                await self._pacer.wait_stopped()
            failure = self._pacer.failure
            if failure is not None:
                if self.close_reason is None:
                    log.warning("media %s: send failed: %s", self._label, failure)
                self._end(CloseReason.BROKEN)
        finally:
            with contextlib.suppress(*TRANSPORT_ERRORS):
                await self._ws.close()  # makes the receive loop end too

    def _end(self, reason: CloseReason, *, stop_pacer: bool = True) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        if stop_pacer:
            self._pacer.stop()
        for playback in self._playbacks.values():
            playback.resolve(completed=False)
        self._playbacks.clear()
        self._checkpoints.clear()
        self._marks_queued.clear()
        for queue in (self._inbound, self._dtmf):
            put_dropping_oldest(queue, None)

    def _check_open(self) -> None:
        if self.close_reason in (CloseReason.LOCAL, CloseReason.HANGUP):
            raise MediaSessionClosed("media session was closed")
        if self.close_reason is not None:
            raise MediaConnectionLost(
                f"media connection lost ({self.close_reason})", close_code=self.close_code
            )

    @property
    def _label(self) -> str:
        return self.started.channel_id

    # --- internals: wire ---

    async def _send_command(self, command: wire.Command, correlation_id: str | None = None) -> None:
        text = wire.encode_command(command, self.control_format, correlation_id=correlation_id)
        try:
            await self._ws.send_str(text)
        except TRANSPORT_ERRORS as exc:
            self._end(CloseReason.BROKEN)
            raise MediaConnectionLost(f"cannot send {command}: {exc}") from exc

    def _frame_sent(self, utterance: Utterance, due: float) -> None:
        playback = self._playbacks.get(utterance.id)
        if playback is None:
            return
        sent = utterance.frames_sent
        if sent == 1:
            playback.confirm(0, now=due)  # playout starts then: the base of the heard estimate
        last = utterance.complete and utterance.frames_pending == 0
        if self._checkpoint_frames and sent % self._checkpoint_frames == 0 and not last:
            checkpoint = f"{playback.id}@{sent}"
            self._checkpoints[checkpoint] = (playback, sent)
            self._write_mark(checkpoint)

    def _utterance_done(self, utterance: Utterance) -> None:
        if utterance.id in self._playbacks:
            self._write_mark(utterance.id)

    def _cut_silence_ahead(self) -> bool:
        """Speech starts while only silence is queued at Asterisk: FLUSH_MEDIA it. The marks of
        speech already played may still sit in that queue (Asterisk reaches them as it plays),
        and a flush drops them: they are written again right behind the flush, so their
        playbacks still complete (a mark reported twice is taken once)."""
        self._writer.text(wire.encode_command(wire.Command.FLUSH_MEDIA, self.control_format))
        for mark_id in list(self._marks_queued):
            self._write_mark(mark_id)
        return True

    def _write_mark(self, mark_id: str) -> None:
        """MARK_MEDIA right behind the frame just written, inside the pacer's visit."""
        self._writer.text(
            wire.encode_command(
                wire.Command.MARK_MEDIA, self.control_format, correlation_id=mark_id
            )
        )
        self._marks_queued[mark_id] = None

    def _on_text(self, text: str) -> None:
        self._on_event(wire.parse_event(text))

    def _on_binary(self, data: bytes) -> None:
        framer = self._inbound_framer
        if len(data) == self.frame_bytes and not framer.pending:
            self._inbound_frame(data)  # one whole frame: the usual case
            return
        if len(data) % self.frame_bytes or framer.pending:
            self.reframed_messages += 1
        for frame in framer.push(data):
            self._inbound_frame(frame)

    def _inbound_frame(self, frame: bytes) -> None:
        self.inbound_frames += 1
        if self._on_audio is not None:
            self._on_audio(frame)
        elif not put_dropping_oldest(self._inbound, frame):
            self.inbound_dropped += 1

    def _on_event(self, event: wire.ControlEvent) -> None:
        match event:
            case wire.MarkProcessed(correlation_id=mark_id):
                self._on_mark(mark_id)
            case wire.MediaXoff():
                self._pacer.xoff()
            case wire.MediaXon():
                self._pacer.xon()
            case wire.DtmfEnd(digit=digit):
                if self._on_dtmf is not None:
                    self._on_dtmf(digit)
                put_dropping_oldest(self._dtmf, digit)
            case wire.Status():
                for waiter in self._status_waiters:
                    if not waiter.done():
                        waiter.set_result(event)
                self._status_waiters.clear()
            case wire.AsteriskError(error_text=text):
                log.warning("media %s: Asterisk refused a command: %s", self._label, text)
            case wire.UnknownMessage(reason=reason):
                self.ignored_messages += 1
                log.warning("media %s: ignoring control message (%s)", self._label, reason)
            case _:
                pass  # QUEUE_DRAINED, BUFFERING_COMPLETED, a repeated MEDIA_START

    def _on_mark(self, mark_id: str) -> None:
        self._marks_queued.pop(mark_id, None)
        checkpoint = self._checkpoints.pop(mark_id, None)
        if checkpoint is not None:
            playback, frames = checkpoint
            playback.confirm(frames)
            return
        finished = self._playbacks.pop(mark_id, None)
        if finished is not None:
            finished.confirm(finished.frames_sent)
            finished.resolve(completed=True)
