"""Call audio for ``FreeswitchPbx``: mod_audio_stream in, files played over ESL out.

``FreeswitchMediaHub.open(channel_uuid, call_id, media_format)`` (the channel's own uuid, not
the call id: ``FreeswitchPbx`` looks it up in its ``CallRegistry``) expects a connection on the
``AudioStreamServer``, runs ``uuid_audio_stream <uuid> start <url> mono <rate>k <metadata>``,
waits for FreeSWITCH to connect and send its first message, and yields a
``FreeswitchCallMedia`` (a ``CallMedia``). The hub also routes the ESL events a media session
needs: ``mod_audio_stream::play`` (the module wrote our chunk to a file: queue ``playback`` of
it with ``sendmsg``) and ``DTMF``. On exit the stream is stopped
(``uuid_audio_stream <uuid> stop``); the call stays up.

A stream FreeSWITCH gives up on is started again. mod_audio_stream's websocket client (libwsc)
waits 1 s for its connection and handshake (``WebSocketClient::connection_timeout``, which the
module never sets: ``audio_streamer_glue.cpp``), then fires ``mod_audio_stream::error``
(``{"code":10,"error":"Timeout"}``) and drops the stream; a voicedock whose event loop is held
up that long (a loaded machine) never sees the connection, or sees it closed before anything
came. The answered caller would hear nothing and be hung up: instead the stream is stopped and
started again with a new token, ``STREAM_ATTEMPTS`` times in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import WSMessage, WSMsgType, web

from voicedock.aio import first_of
from voicedock.domain.audio import AudioFormat, format_by_name
from voicedock.domain.ids import mask_call_id
from voicedock.errors import MediaError, PbxError
from voicedock.media.errors import MediaStartTimeout
from voicedock.pbx.freeswitch.commands import (
    build_audio_stream_start,
    build_audio_stream_stop,
    build_queued_playback,
    build_uuid_break,
    build_uuid_kill,
)
from voicedock.pbx.freeswitch.esl.client import EslClient
from voicedock.pbx.freeswitch.esl.errors import EslCommandError
from voicedock.pbx.freeswitch.esl.wire import EslEvent
from voicedock.pbx.freeswitch.media.audio_stream_wire import (
    AudioStreamWireError,
    parse_play_event_body,
)
from voicedock.pbx.freeswitch.media.call_media import FreeswitchCallMedia
from voicedock.pbx.freeswitch.media.playout_files import DEFAULT_PLAYOUT, FilePlayout
from voicedock.pbx.freeswitch.media.stream_server import (
    AudioStreamServer,
    PendingStream,
    mask_stream_tokens,
)

log = logging.getLogger("voicedock.pbx.freeswitch.pbx")

PLAY_EVENT = "mod_audio_stream::play"
ERROR_EVENT = "mod_audio_stream::error"  # the module gave up on (or lost) its connection
# The CUSTOM subclasses to subscribe to (after "CUSTOM" in the event command).
MEDIA_EVENT_SUBCLASSES = (PLAY_EVENT, "mod_audio_stream::disconnect", ERROR_EVENT)
_STREAM_RATES = {8000: 8000, 16000: 16000, 24000: 24000}
# How many times a stream FreeSWITCH gave up on is started (the first time included).
STREAM_ATTEMPTS = 3
# A stream closed before it sent anything: how long its error event may still take to come
# (FreeSWITCH fires it before it drops the connection), so that it is not taken for the next
# attempt's.
_GAVE_UP_GRACE_S = 1.0


# Replies that mean "nothing left to stop" (mod_commands, mod_audio_stream).
_CHANNEL_GONE = ("No such channel",)
_STREAM_GONE = ("No such channel", "Operation Failed")


class EslPlaybackControl:
    """``PlaybackControl`` of one channel over the Event Socket."""

    def __init__(self, esl: EslClient, channel_uuid: str) -> None:
        self._esl = esl
        self._uuid = channel_uuid

    async def play_file(self, path: str) -> None:
        # Not uuid_broadcast: it waits 5 frames (100 ms of silence) before every file.
        await self._esl.sendmsg(*build_queued_playback(self._uuid, path))

    async def stop_playback(self) -> None:
        await self._quiet(build_uuid_break(self._uuid, all_queued=True))

    async def hangup(self) -> None:
        await self._quiet(build_uuid_kill(self._uuid, "NORMAL_CLEARING"))

    async def stop_stream(self) -> None:
        # mod_audio_stream answers "-ERR Operation Failed" both for a channel that is gone and
        # for one without a stream (seen on the lab FreeSWITCH): nothing to stop either way.
        await self._quiet(build_audio_stream_stop(self._uuid), gone=_STREAM_GONE)

    async def _quiet(self, command: str, gone: tuple[str, ...] = _CHANNEL_GONE) -> None:
        try:
            await self._esl.api(command)
        except EslCommandError as exc:
            if not any(reply in exc.reply for reply in gone):
                raise  # a channel already gone needs nothing stopped


class FreeswitchMediaHub:
    def __init__(
        self,
        esl: EslClient,
        server: AudioStreamServer,
        *,
        connect_timeout: float = 5.0,
        playout: FilePlayout = DEFAULT_PLAYOUT,
    ) -> None:
        self._esl = esl
        self.server = server
        self._connect_timeout = connect_timeout
        self._playout = playout
        self._sessions: dict[str, FreeswitchCallMedia] = {}
        # Channel uuid -> set when FreeSWITCH reports the stream being started failed.
        self._gave_up: dict[str, asyncio.Event] = {}

    def session(self, channel_uuid: str) -> FreeswitchCallMedia | None:
        return self._sessions.get(channel_uuid)

    @asynccontextmanager
    async def open(
        self, channel_uuid: str, call_id: str, media_format: str = "ulaw"
    ) -> AsyncIterator[FreeswitchCallMedia]:
        fmt = format_by_name(media_format)
        if fmt is None or fmt.sample_rate not in _STREAM_RATES:
            raise MediaError(f"media format {media_format!r} is not supported on FreeSWITCH")
        if channel_uuid in self._sessions:
            raise MediaError("the call already has media attached")
        pending, ws, first = await self._start(channel_uuid, call_id, fmt)
        control = EslPlaybackControl(self._esl, channel_uuid)
        media = FreeswitchCallMedia(ws, control, fmt, first=first, playout=self._playout)
        self._sessions[channel_uuid] = media
        try:
            async with media:
                yield media
        finally:
            self._sessions.pop(channel_uuid, None)
            pending.release()

    async def _start(
        self, channel_uuid: str, call_id: str, fmt: AudioFormat
    ) -> tuple[PendingStream, web.WebSocketResponse, WSMessage]:
        """The channel's stream, once FreeSWITCH connected and sent its first message: its
        expected connection (to release when done), the websocket and that message. A stream
        FreeSWITCH gave up on is started again (``STREAM_ATTEMPTS`` in all)."""
        # The call id only, masked: FreeSWITCH logs the metadata, and an inbound call id holds
        # the caller's number.
        metadata = json.dumps({"voicedock_call": mask_call_id(call_id)}, separators=(",", ":"))
        for attempt in range(1, STREAM_ATTEMPTS + 1):
            pending = self.server.expect(channel_uuid)
            gave_up = self._gave_up[channel_uuid] = asyncio.Event()
            try:
                await self._esl.api(
                    build_audio_stream_start(
                        channel_uuid,
                        pending.url,
                        mix="mono",
                        sample_rate=_STREAM_RATES[fmt.sample_rate],
                        metadata=metadata,
                    )
                )
                opened = await self._opened(pending, gave_up)
                if opened is not None:
                    return pending, *opened
                pending.release()
                if not gave_up.is_set():  # closed before anything came: its error event follows
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(_GAVE_UP_GRACE_S):
                            await gave_up.wait()
            except EslCommandError as exc:  # e.g. mod_audio_stream not loaded, channel gone
                pending.release()
                reply = mask_stream_tokens(exc.reply.strip())  # it may repeat the stream's URL
                raise MediaError(f"uuid_audio_stream refused: {reply}"[:200]) from None
            except BaseException:
                pending.release()
                raise
            finally:
                if self._gave_up.get(channel_uuid) is gave_up:
                    del self._gave_up[channel_uuid]
            log.warning(
                "audio stream: FreeSWITCH gave up on its connection (attempt %d of %d)",
                attempt,
                STREAM_ATTEMPTS,
            )
            await EslPlaybackControl(self._esl, channel_uuid).stop_stream()  # what is left of it
        raise MediaStartTimeout(f"FreeSWITCH gave up on the audio stream {STREAM_ATTEMPTS} times")

    async def _opened(
        self, pending: PendingStream, gave_up: asyncio.Event
    ) -> tuple[web.WebSocketResponse, WSMessage] | None:
        """The stream's websocket and its first message (the metadata, or audio); None when
        FreeSWITCH gave up first (its error event, or the connection closed before anything
        came). ``MediaStartTimeout`` when it neither connected nor gave up in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._connect_timeout
        connected = await first_of(pending.websocket(self._connect_timeout), gave_up.wait())
        if connected is None or connected[0] == 1:
            return None
        ws = connected[1]
        assert isinstance(ws, web.WebSocketResponse)
        remaining = max(0.0, deadline - loop.time())
        message = await first_of(ws.receive(), gave_up.wait(), within=remaining)
        if message is None:
            raise MediaStartTimeout(
                f"the audio stream sent nothing within {self._connect_timeout} s"
            )
        first = message[1]
        if isinstance(first, WSMessage) and first.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            return ws, first
        return None

    async def clear_leftovers(self, channel_uuid: str) -> None:
        """Stop what a previous run of voicedock left on a channel it served (its audio stream,
        queued playback), so that ``open`` starts afresh; nothing there is fine."""
        if channel_uuid in self._sessions:
            raise MediaError("the channel has media of this run attached")
        control = EslPlaybackControl(self._esl, channel_uuid)
        await control.stop_playback()
        await control.stop_stream()

    async def stop_stream(self, channel_uuid: str) -> None:
        """Stop the channel's stream (the caller left for a transfer target): FreeSWITCH closes
        the websocket, so the media ends as PEER."""
        if channel_uuid in self._sessions:
            await EslPlaybackControl(self._esl, channel_uuid).stop_stream()

    def on_event(self, event: EslEvent) -> None:
        """Route a CUSTOM audio-stream event or a DTMF to the channel's media, if any."""
        uid = event.unique_id
        if uid and event.subclass == ERROR_EVENT and (gave_up := self._gave_up.get(uid)):
            body = mask_stream_tokens(event.event_body or "")
            log.info("audio stream %s while starting: %s", event.subclass, body[:200])
            gave_up.set()
            return
        media = self._sessions.get(uid) if uid else None
        if media is None:
            return
        if event.name == "DTMF":
            digit = event.get("DTMF-Digit")
            if digit:
                media.on_dtmf(digit[:1])
            return
        if event.subclass == PLAY_EVENT:
            try:
                play = parse_play_event_body(event.event_body or "")
            except AudioStreamWireError as exc:
                log.warning("audio stream: unusable play event: %s", exc)
                return
            media.on_play_event(play.file)
        elif event.subclass in MEDIA_EVENT_SUBCLASSES:
            body = mask_stream_tokens(event.event_body or "")  # an error may name the URL
            log.info("audio stream %s: %s", event.subclass, body[:200])

    async def aclose(self) -> None:
        for media in list(self._sessions.values()):
            try:
                await media.aclose()
            except PbxError as exc:
                log.warning("audio stream: close failed: %s", exc)
        await self.server.aclose()
