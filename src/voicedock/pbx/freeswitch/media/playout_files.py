"""``PlayoutFiles``: the assistant's audio to FreeSWITCH as files, and what the caller heard of it.

The community mod_audio_stream does not play what it receives: it writes each ``streamAudio``
message to a file and fires ``mod_audio_stream::play``; the PBX adapter hands that event to
``on_play_event`` and the ``playback`` of the file is queued on the channel
(``ChannelPlayback.play_file``), behind the files still playing, so the channel plays them
back to back. Audio goes out in chunks (``chunk_ms``), kept at most ``lead_ms`` ahead of what
the caller hears so that barge-in has little to throw away.

The ``Pacer`` is reused as the queue of utterances (back-pressure, ``clear``) and driven on its
own virtual clock (``Pacer.run``, not the shared 20 ms ``MediaClock``) whose ``sleep`` waits only
while FreeSWITCH already holds ``lead_ms`` of audio. Its tick only collects frames into chunks;
the chunks a tick completed are sent right after it (``after_tick``), in order.

* **Barge-in:** ``flush`` drops our queue and FreeSWITCH's (``ChannelPlayback.stop_playback``:
  ``uuid_break <uuid> all``); play events of chunks sent before the flush are ignored when they
  arrive (the k-th play event belongs to the k-th ``streamAudio`` message: the module numbers
  its files in order).
* **Played:** by the clock (``PlayoutTimeline``) from the moment each file is queued on the
  channel; FreeSWITCH reports nothing per frame.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from voicedock.aio import Coro, Supervisor
from voicedock.domain.audio import AudioFormat
from voicedock.errors import MediaError, PbxError
from voicedock.media.codecs import decode
from voicedock.media.pacer import FRAME_PERIOD, Pacer, PacerHooks, Utterance
from voicedock.media.playback import Playback, Playbacks, PlayoutResult
from voicedock.pbx.freeswitch.media.audio_stream_wire import encode_stream_audio
from voicedock.pbx.freeswitch.media.playout import PlayoutTimeline, Segment
from voicedock.weak import weak_method

__all__ = ["ChannelPlayback", "PlayoutFiles"]

log = logging.getLogger("voicedock.media.freeswitch")


class ChannelPlayback(Protocol):
    """What the playout asks of the channel (over ESL: the adapter's ``PlaybackControl``)."""

    async def play_file(self, path: str) -> None: ...  # queue playback <path> on the channel
    async def stop_playback(self) -> None: ...  # uuid_break <uuid> all


@dataclass(frozen=True, slots=True)
class FilePlayout:
    """How a call's audio is played as files: ``chunk_ms`` of it per file, ``lead_ms`` written
    ahead of what plays, at most ``max_queued_frames`` queued."""

    chunk_ms: int = 400
    lead_ms: int = 1200
    max_queued_frames: int = 250


DEFAULT_PLAYOUT = FilePlayout()


class PlayoutFiles:
    """The playbacks of one call's audio stream, played by FreeSWITCH as files."""

    def __init__(
        self,
        fmt: AudioFormat,
        tasks: Supervisor,
        send: Callable[[str], Awaitable[None]],
        channel: ChannelPlayback,
        options: FilePlayout = DEFAULT_PLAYOUT,
    ) -> None:
        """``tasks``: the media's, for audio that streams in; ``send`` a ``streamAudio``
        message on the websocket; ``channel`` plays the files the module wrote."""
        self._format = fmt
        self._tasks = tasks
        self._send, self._channel = send, channel
        self._frame_bytes = fmt.frame_bytes()
        self._stream_rate = fmt.sample_rate  # L16 both ways at the call's rate
        self._chunk_frames = max(1, options.chunk_ms // 20)
        self._lead = options.lead_ms / 1000
        self._virtual_now = 0.0
        self.pacer = self._pacer(options.max_queued_frames)
        self.timeline = PlayoutTimeline()
        spawn = weak_method(self._spawn_feed)
        self._playbacks = Playbacks(self.pacer, fmt=fmt, frame_bytes=self._frame_bytes, spawn=spawn)
        self._chunk = bytearray()
        self._chunk_segments: list[Segment] = []
        self._cut: list[str] = []  # streamAudio messages cut by a tick, not yet sent
        self._messages_cut = 0
        self._files: asyncio.Queue[tuple[int, str]] = asyncio.Queue()  # (message index, file)
        self._esl_lock = asyncio.Lock()  # playbacks and uuid_break stay in order
        self.messages_sent = 0
        self._play_events = 0
        self._discard_before = 0

    def _pacer(self, max_queued_frames: int) -> Pacer:
        """The frames paced on the playout's own virtual clock, each tick's chunks sent after
        it; its callbacks never keep the playout alive."""
        hooks = PacerHooks(
            on_frame_sent=weak_method(self._frame_taken),
            on_utterance_done=weak_method(self._utterance_done),
            after_tick=weak_method(self._send_cut_chunks),
        )
        return Pacer(
            weak_method(self._take_frame),
            b"",
            hooks,
            send_silence=False,
            max_queued_frames=max_queued_frames,
            clock=weak_method(self._now),
            sleep=weak_method(self._sleep_until_room),
        )

    def play(self, audio: bytes | AsyncIterable[bytes], *, mark: str | None = None) -> Playback:
        """Queue assistant audio (wire format bytes, any chunking) behind what is queued already."""
        return self._playbacks.play(audio, mark)

    def _spawn_feed(self, feed: Coro[None]) -> None:
        if not self._tasks.running:
            feed.close()
            raise MediaError("use the media as an async context manager")
        self._tasks.spawn(feed)

    async def flush(self) -> PlayoutResult | None:
        """Barge-in: drop our queue and FreeSWITCH's; the outcome of the utterance the caller
        was hearing (None if none was playing)."""
        self.pacer.clear()
        self._chunk.clear()
        self._chunk_segments.clear()
        self._cut.clear()
        self._messages_cut = self.messages_sent
        self._discard_before = self.messages_sent  # their play events are stale when they come
        while not self._files.empty():
            self._files.get_nowait()
        async with self._esl_lock:
            try:
                await self._channel.stop_playback()
            except PbxError as exc:
                log.warning("audio stream: uuid_break failed: %s", exc)
        self.timeline.clear()
        return self._playbacks.cut_short()

    def end(self) -> None:
        """The stream is over: nothing more is sent, no playback completes."""
        self._playbacks.end()

    def on_play_event(self, file: str) -> None:
        """``mod_audio_stream::play``: FreeSWITCH wrote our next chunk to ``file``."""
        index, self._play_events = self._play_events, self._play_events + 1
        if index >= self._discard_before:
            self._files.put_nowait((index, file))

    async def queue_files(self) -> None:
        """Queue each file FreeSWITCH wrote on the channel, in order (until cancelled)."""
        while True:
            index, path = await self._files.get()
            async with self._esl_lock:
                if index < self._discard_before:
                    continue  # a barge-in came while it waited for the lock
                try:
                    await self._channel.play_file(path)
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
        while not self.pacer.stopped():
            self.timeline.advance()
            if self.pacer.queued_frames == 0:
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
        if len(self._chunk) >= self._chunk_frames * self._frame_bytes:
            self._cut_chunk()

    def _utterance_done(self, utterance: Utterance) -> None:
        self._cut_chunk()
        playback = self._playbacks.get(utterance.id)
        if playback is not None:
            self.timeline.finish(playback)
        self._playbacks.forget_done()

    def _cut_chunk(self) -> None:
        """The frames collected so far become the next streamAudio message (sent after the
        tick by ``_send_cut_chunks``)."""
        if not self._chunk:
            return
        pcm = bytes(self._chunk)
        segments, self._chunk_segments = self._chunk_segments, []
        self._chunk.clear()
        if not self._format.is_linear:
            pcm = decode(self._format, pcm).astype("<i2").tobytes()
        # Before the send: its play event may come while the send is still being awaited.
        self.timeline.sent(self._messages_cut, segments)
        self._messages_cut += 1
        self._cut.append(encode_stream_audio(pcm, self._stream_rate))

    async def _send_cut_chunks(self) -> None:
        while self._cut:
            message = self._cut.pop(0)
            self.messages_sent += 1  # the module numbers its files in the order it got them
            await self._send(message)
