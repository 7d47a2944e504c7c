"""Call audio for ``FreeswitchPbx``: mod_audio_stream in, files played over ESL out.

``FreeswitchMediaHub.open(channel_uuid, call_id, media_format)`` (the channel's own uuid, not
the call id: ``FreeswitchPbx`` looks it up in its ``CallRegistry``) expects a connection on the
``AudioStreamServer``, runs ``uuid_audio_stream <uuid> start <url> mono <rate>k <metadata>``,
waits for FreeSWITCH to connect and yields a ``FreeswitchCallMedia`` (a ``CallMedia``). The hub
also routes the ESL events a media session needs: ``mod_audio_stream::play`` (the module wrote
our chunk to a file: queue ``playback`` of it with ``sendmsg``) and ``DTMF``. On exit the stream
is stopped (``uuid_audio_stream <uuid> stop``); the call stays up.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from voicedock.domain.audio import format_by_name
from voicedock.domain.ids import mask_call_id
from voicedock.errors import MediaError, PbxError
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
from voicedock.pbx.freeswitch.media.stream_server import AudioStreamServer, mask_stream_tokens

log = logging.getLogger("voicedock.pbx.freeswitch.pbx")

PLAY_EVENT = "mod_audio_stream::play"
# The CUSTOM subclasses to subscribe to (after "CUSTOM" in the event command).
MEDIA_EVENT_SUBCLASSES = (PLAY_EVENT, "mod_audio_stream::disconnect", "mod_audio_stream::error")
_STREAM_RATES = {8000: 8000, 16000: 16000, 24000: 24000}


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
        chunk_ms: int = 400,
        lead_ms: int = 1200,
    ) -> None:
        self._esl = esl
        self.server = server
        self._connect_timeout = connect_timeout
        self._chunk_ms = chunk_ms
        self._lead_ms = lead_ms
        self._sessions: dict[str, FreeswitchCallMedia] = {}

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
        pending = self.server.expect(channel_uuid)
        try:
            # The call id only, masked: FreeSWITCH logs the metadata, and an inbound call id
            # holds the caller's number.
            shown = mask_call_id(call_id)
            metadata = json.dumps({"voicedock_call": shown}, separators=(",", ":"))
            await self._esl.api(
                build_audio_stream_start(
                    channel_uuid,
                    pending.url,
                    mix="mono",
                    sample_rate=_STREAM_RATES[fmt.sample_rate],
                    metadata=metadata,
                )
            )
            ws = await pending.websocket(self._connect_timeout)
        except EslCommandError as exc:  # e.g. mod_audio_stream not loaded, channel gone
            pending.release()
            reply = mask_stream_tokens(exc.reply.strip())  # it may repeat the stream's URL
            raise MediaError(f"uuid_audio_stream refused: {reply}"[:200]) from None
        except BaseException:
            pending.release()
            raise
        control = EslPlaybackControl(self._esl, channel_uuid)
        media = FreeswitchCallMedia(
            ws, control, fmt, chunk_ms=self._chunk_ms, lead_ms=self._lead_ms
        )
        self._sessions[channel_uuid] = media
        try:
            async with media:
                yield media
        finally:
            self._sessions.pop(channel_uuid, None)
            pending.release()

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
