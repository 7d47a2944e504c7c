"""The pipeline's ``OutputSink`` over a call's ``CallMedia``: assistant speech onto the call.

``MediaSink.play(pcm, rate)`` takes 16-bit mono PCM at the pipeline's rate, resamples it once to
the session's rate, encodes it to the session's wire format (µ-law, A-law, slin*) and queues it
behind what is already queued. Each call returns a ``MediaPlaybackHandle``:

* ``played()`` returns when Asterisk *confirmed* the last frame with its playback mark (or the
  audio was flushed, or the session ended), so "spoken to the end" means heard, not just sent;
* ``flush()`` is barge-in: it flushes the session (our queue and Asterisk's) once and returns the
  milliseconds the caller actually heard of this audio (``PlayoutResult.heard_ms``), so the
  stored assistant message is cut where the caller stopped hearing it.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from voicedock.errors import MediaError
from voicedock.media.call_media import CallMedia
from voicedock.media.codecs import encode, resample
from voicedock.media.playback import Playback, PlayoutResult

log = logging.getLogger("voicedock.media")


class MediaPlaybackHandle:
    """One queued chunk of assistant audio (a ``PlaybackHandle``)."""

    def __init__(self, session: CallMedia, playback: Playback, duration_ms: float) -> None:
        self._session = session
        self._playback = playback
        self._duration_ms = duration_ms

    @property
    def duration_ms(self) -> float:
        return self._duration_ms

    async def started(self) -> None:
        # The session has no per-playback start signal; half a frame of polling costs nothing
        # next to the 20 ms frame clock and keeps the session's hot path untouched.
        interval = self._playback.frame_ms / 2000
        while self._playback.frames_sent == 0 and not self._playback.done:  # noqa: ASYNC110
            await asyncio.sleep(interval)

    async def played(self) -> None:
        await self._playback.played()

    async def result(self) -> PlayoutResult:
        return await self._playback.played()

    async def flush(self) -> float:
        if not self._playback.done and not self._session.closed:
            try:
                # Flushes every queued playback: barge-in stops all assistant audio at once.
                await self._session.flush()
            except MediaError as exc:
                log.debug("media: flush on a closed session: %s", type(exc).__name__)
        if not self._playback.done:  # the session was closed: nothing more will be heard
            self._playback.resolve(completed=False)
        outcome = await self._playback.played()
        return min(outcome.heard_ms, self._duration_ms)


class MediaSink:
    """``OutputSink`` of one call: resample once, encode to the session format, play."""

    def __init__(self, session: CallMedia) -> None:
        self._session = session

    async def play(self, pcm: bytes, sample_rate: int) -> MediaPlaybackHandle:
        session = self._session
        fmt = session.format
        # Back-pressure: a long reply waits here instead of piling up seconds of audio.
        await session.pacer.wait_for_room()
        samples = np.frombuffer(pcm, dtype="<i2")
        if sample_rate != fmt.sample_rate:
            samples = resample(samples, sample_rate, fmt.sample_rate)
        duration_ms = len(samples) * 1000.0 / fmt.sample_rate
        playback = session.play(encode(fmt, samples))
        # Not kept here: the conversation holds a reply's handles while it is spoken, and a
        # call's every chunk of audio (its playback, futures, frames) must not live as long
        # as the call.
        return MediaPlaybackHandle(session, playback, duration_ms)
