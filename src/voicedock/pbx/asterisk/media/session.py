"""``MediaSession``: one call's audio over an Asterisk chan_websocket connection.

Server mode: ``async with MediaSession.connect(url) as media`` (``ws://<ast>/media/<id>``), then
``media.started``, ``media.inbound_audio()``, ``media.play(bytes or async iterator)`` →
``Playback.played()``, ``media.flush()`` for barge-in, ``media.dtmf()``, ``media.hangup()``.
Client mode (Asterisk dials us) goes through ``acceptor.MediaAcceptor``.

The session reads the connection and speaks its control messages; what the caller sends is
``CallerAudio``'s (``caller``: frames and digits), what the assistant says ``PlayoutMarks``'
(the playbacks, their marks). A supervisor owned by the session holds the receive loop, the
output task and any streaming-playback feeders. Output is driven by the process's
``MediaClock``: the output task attaches the session's pacer to it and waits; the clock visits
the session every 20 ms and, once 60 ms or less of its audio is queued at Asterisk, the pacer
writes up to 140 ms ahead (the frames and the marks between them) synchronously through a
``FrameWriter``, in one write. A gap in what the caller sends is silence on the wall clock
(``CallerAudio``, ``media/gap_filler.py``). Neither task lets an exception escape: when one
ends, it stops the other and records why (``close_reason``), so a broken call never cancels the
code that owns it. Using a closed session raises ``MediaSessionClosed`` if we closed it and
``MediaConnectionLost`` if the peer did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Self, TypedDict, Unpack

from aiohttp import WSMsgType

from voicedock.domain.audio import AudioFormat, format_by_name
from voicedock.media.errors import (
    MediaConnectionLost,
    MediaProtocolError,
)
from voicedock.media.framing import silence_frame
from voicedock.media.gap_filler import GAP_AFTER
from voicedock.media.playback import PlayoutResult
from voicedock.media.transport import TRANSPORT_ERRORS, CloseReason
from voicedock.pbx.asterisk.media import chan_websocket as wire
from voicedock.pbx.asterisk.media.caller_audio import CallerAudio
from voicedock.pbx.asterisk.media.clock import MediaClock
from voicedock.pbx.asterisk.media.frame_writer import FrameWriter
from voicedock.pbx.asterisk.media.handshake import MediaWebSocket, read_media_start
from voicedock.pbx.asterisk.media.leg_session import LegSession
from voicedock.pbx.asterisk.media.playout import PlayoutMarks
from voicedock.pbx.asterisk.media.websocket_client import WebSocketClient
from voicedock.weak import weak_method

log = logging.getLogger("voicedock.media")

_ENDED = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED})


class SessionOptions(TypedDict, total=False):
    """A session's tuning beside its websocket (``MediaSession``'s keyword arguments)."""

    checkpoint_frames: int
    send_silence: bool
    on_audio: Callable[[bytes], None] | None
    on_dtmf: Callable[[str], None] | None
    inbound_buffer_frames: int
    max_queued_frames: int
    clock: MediaClock | None
    fill_gaps_after: float | None


class MediaSession(LegSession[PlayoutMarks]):
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
        fill_gaps_after: float | None = GAP_AFTER,
    ) -> None:
        """``clock`` drives the output (default: the shared clock of the running loop);
        ``fill_gaps_after``: how long the caller may send nothing before the gap is silence
        (None: never, the caller's frames only)."""
        fmt = format_by_name(started.format)
        if fmt is None or started.optimal_frame_size <= 0:
            raise MediaProtocolError(f"unsupported media format {started.format!r}")
        self._ws = ws
        self._clock = clock
        self.started = started
        self.format: AudioFormat = fmt
        self.control_format = control_format
        self.frame_bytes = started.optimal_frame_size
        self.frame_ms = fmt.duration_ms(self.frame_bytes)
        caller = self._caller_audio(inbound_buffer_frames, on_audio, on_dtmf, fill_gaps_after)
        playout = self._playout_marks(checkpoint_frames, send_silence, max_queued_frames)
        super().__init__(caller, playout, tasks="media session")
        self.entered = asyncio.Event()
        """Set once the session runs (its owner entered ``async with``)."""
        self.ignored_messages = 0

    def _caller_audio(
        self,
        buffer_frames: int,
        on_audio: Callable[[bytes], None] | None,
        on_dtmf: Callable[[str], None] | None,
        fill_gaps_after: float | None,
    ) -> CallerAudio:
        """The caller's frames buffered ``buffer_frames`` deep, their gaps filled after
        ``fill_gaps_after`` seconds, their keys to ``on_dtmf``."""
        return CallerAudio(
            self.frame_bytes,
            buffer_frames=buffer_frames,
            on_audio=on_audio,
            on_dtmf=on_dtmf,
            fmt=self.format,
            fill_gaps_after=fill_gaps_after,
        )

    def _playout_marks(
        self, checkpoint_frames: int, send_silence: bool, max_queued_frames: int
    ) -> PlayoutMarks:
        """Checkpoints every ``checkpoint_frames`` that Asterisk reports back as played."""
        return PlayoutMarks(
            FrameWriter(self._ws),
            weak_method(self._send_command),
            weak_method(self._spawn),
            fmt=self.format,
            control_format=self.control_format,
            frame_bytes=self.frame_bytes,
            silence=silence_frame(self.format, self.started.ptime),
            checkpoint_frames=checkpoint_frames,
            send_silence=send_silence,
            max_queued_frames=max_queued_frames,
        )

    # --- lifecycle ---

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        url: str,
        *,
        start_timeout: float = 5.0,
        connecting: asyncio.Semaphore | None = None,
        **options: Unpack[SessionOptions],
    ) -> AsyncIterator[MediaSession]:
        """Server mode: open ``ws://<asterisk>/media/<connection id>`` and wait for MEDIA_START;
        ``connecting``: held while the websocket is dialed and upgraded (the server's
        connections dialed at once: ``ari/rest.py`` ``HTTP_CONNECTS_AT_ONCE``)."""
        try:
            async with connecting or contextlib.nullcontext():
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

    async def aclose(self) -> None:
        """Stop sending, close the websocket and wait for the session's tasks (idempotent)."""
        self._end(CloseReason.LOCAL)
        with contextlib.suppress(*TRANSPORT_ERRORS):
            await self._ws.close()
        await self._tasks.drain()
        self._closed.set()

    # --- speaking ---

    async def flush(self) -> PlayoutResult | None:
        """Barge-in: drop everything queued here and in Asterisk.

        Returns the outcome of the utterance the caller was hearing (None if none was playing);
        every unfinished playback resolves as not completed.
        """
        self._check_open()
        return await self._playout.flush()

    async def hangup(self, close_wait: float = 2.0) -> None:
        """Ask Asterisk to hang up the media channel; it then closes the socket."""
        self._check_open()
        self._end(CloseReason.HANGUP)
        with contextlib.suppress(*TRANSPORT_ERRORS):
            await self._ws.send_str(wire.encode_command(wire.Command.HANGUP, self.control_format))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), close_wait)
        await self.aclose()

    # --- internals: tasks ---

    async def _receive_loop(self) -> None:
        ws, binary, text, ended = self._ws, WSMsgType.BINARY, WSMsgType.TEXT, _ENDED
        on_binary = self.caller.on_binary
        try:
            if isinstance(ws, WebSocketClient):
                # Messages are handed over as they arrive, no task wake-up per frame.
                ws.deliver_to(on_binary, weak_method(self._on_text))
                await ws.wait_closed()
                if ws.failure is not None:
                    log.warning("media %s: connection failed: %s", self._label, ws.failure)
                    self._end(CloseReason.BROKEN)
                return
            while True:
                message = await ws.receive()
                kind = message.type
                if kind is binary:
                    on_binary(message.data)
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
        pacer = self._playout.pacer
        try:
            async with clock.driving(pacer):
                await pacer.wait_stopped()
            failure = pacer.failure
            if failure is not None:
                if self.close_reason is None:
                    log.warning("media %s: send failed: %s", self._label, failure)
                self._end(CloseReason.BROKEN)
        finally:
            with contextlib.suppress(*TRANSPORT_ERRORS):
                await self._ws.close()  # makes the receive loop end too

    @property
    def _label(self) -> str:
        return self.started.channel_id

    # --- internals: control messages ---

    async def _send_command(self, command: wire.Command, correlation_id: str | None = None) -> None:
        text = wire.encode_command(command, self.control_format, correlation_id=correlation_id)
        try:
            await self._ws.send_str(text)
        except TRANSPORT_ERRORS as exc:
            self._end(CloseReason.BROKEN)
            raise MediaConnectionLost(f"cannot send {command}: {exc}") from exc

    def _on_text(self, text: str) -> None:
        self._on_event(wire.parse_event(text))

    def _on_event(self, event: wire.ControlEvent) -> None:
        match event:
            case wire.MarkProcessed(correlation_id=mark_id):
                self._playout.on_mark(mark_id)
            case wire.MediaXoff():
                self._playout.pacer.xoff()
            case wire.MediaXon():
                self._playout.pacer.xon()
            case wire.DtmfEnd(digit=digit):
                self.caller.digit(digit)
            case wire.AsteriskError(error_text=text):
                log.warning("media %s: Asterisk refused a command: %s", self._label, text)
            case wire.UnknownMessage(reason=reason):
                self.ignored_messages += 1
                log.warning("media %s: ignoring control message (%s)", self._label, reason)
            case _:
                pass  # QUEUE_DRAINED, BUFFERING_COMPLETED, STATUS, a repeated MEDIA_START
