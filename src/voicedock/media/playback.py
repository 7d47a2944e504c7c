"""Playback handles: what the caller actually heard of each queued utterance.

Asterisk reports playout progress only through MEDIA_MARK_PROCESSED. The session sends a MARK_MEDIA
after the last frame of every utterance and, while it plays, a *checkpoint* mark every
``checkpoint_frames`` frames. So at any moment we know:

* ``confirmed_frames``: frames Asterisk has reported played (exact, from the last mark);
* ``frames_sent``: frames handed to Asterisk (an upper bound of what was played; the pacer
  writes up to ~140 ms ahead, see ``voicedock.pbx.asterisk.media.clock``).

After a barge-in flush the best estimate of what the caller heard is
``confirmed + time since that confirmation`` (Asterisk plays in real time), capped at what was
sent. Its error is below one frame plus the mark's one-way latency (< 1 ms on loopback); the
bounds ``played_ms`` .. ``sent_ms`` are never more than ``checkpoint_frames`` frames plus
Asterisk's queue depth (up to 7 frames written ahead) apart. The heard estimate starts at the
first frame's due time, not when it was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import dataclass

from voicedock.aio import Coro
from voicedock.domain.audio import AudioFormat
from voicedock.errors import MediaError
from voicedock.media.framing import Framer
from voicedock.media.pacer import Pacer, Utterance

log = logging.getLogger("voicedock.media")

MAX_MARK = 80  # characters of a playback's mark
_auto_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class PlayoutResult:
    completed: bool
    """True when Asterisk reported the utterance's final mark (it was played to the end)."""
    played_ms: float
    """Confirmed by Asterisk's marks: a lower bound of what the caller heard."""
    heard_ms: float
    """Best estimate of what the caller heard (see module docstring)."""
    sent_ms: float
    """Audio handed to Asterisk: an upper bound."""


class Playback:
    """Returned by ``MediaSession.play``; ``await played()`` for the outcome."""

    def __init__(self, mark_id: str, utterance: Utterance, frame_ms: float) -> None:
        self.id = mark_id
        self.utterance = utterance
        self.frame_ms = frame_ms
        self.confirmed_frames = 0
        self._confirmed_at: float | None = None
        self._result: asyncio.Future[PlayoutResult] = asyncio.get_running_loop().create_future()

    @property
    def frames_sent(self) -> int:
        return self.utterance.frames_sent

    @property
    def done(self) -> bool:
        return self._result.done()

    async def played(self) -> PlayoutResult:
        """Resolves when Asterisk played the utterance, or it was flushed, or the session ended."""
        return await asyncio.shield(self._result)

    def confirm(self, frames: int, *, now: float | None = None) -> None:
        if frames >= self.confirmed_frames:
            self.confirmed_frames = frames
            self._confirmed_at = time.monotonic() if now is None else now

    def estimate(self, *, completed: bool, now: float | None = None) -> PlayoutResult:
        sent_ms = self.frames_sent * self.frame_ms
        played_ms = self.confirmed_frames * self.frame_ms
        if completed:
            return PlayoutResult(True, sent_ms, sent_ms, sent_ms)
        heard_ms = played_ms
        if self._confirmed_at is not None:
            elapsed_ms = ((time.monotonic() if now is None else now) - self._confirmed_at) * 1000
            heard_ms = min(sent_ms, played_ms + max(0.0, elapsed_ms))
        return PlayoutResult(False, played_ms, heard_ms, sent_ms)

    def resolve(self, *, completed: bool) -> PlayoutResult:
        result = self.estimate(completed=completed)
        if not self._result.done():
            self._result.set_result(result)
        return result


def cut_short(playbacks: Iterable[Playback]) -> PlayoutResult | None:
    """Barge-in: every unfinished playback of ``playbacks`` resolves as not completed; the
    outcome of the one the caller was hearing (the first with frames sent), or ``None``."""
    current: PlayoutResult | None = None
    for playback in list(playbacks):
        if playback.done:
            continue
        result = playback.resolve(completed=False)
        if current is None and playback.frames_sent:
            current = result
    return current


class Playbacks(dict[str, Playback]):
    """The unfinished playbacks of one media leg by mark, each an utterance of its ``pacer``."""

    def __init__(
        self,
        pacer: Pacer,
        *,
        fmt: AudioFormat,
        frame_bytes: int,
        spawn: Callable[[Coro[None]], None],
    ) -> None:
        """``frame_bytes``: a frame of the pacer's, in ``fmt``; ``spawn``: the leg's, for
        audio that streams in."""
        super().__init__()
        self._pacer = pacer
        self._format = fmt
        self._frame_bytes = frame_bytes
        self._frame_ms = fmt.duration_ms(frame_bytes)
        self._spawn = spawn

    def play(self, audio: bytes | AsyncIterable[bytes], mark: str | None) -> Playback:
        """Queue assistant audio (wire format bytes, any chunking) behind what is queued
        already, as the playback ``mark`` (one of its own when None)."""
        if mark is None:
            mark = f"vd:{next(_auto_ids)}"
        elif mark in self or len(mark) > MAX_MARK:
            raise MediaError(f"mark must be unique and at most {MAX_MARK} characters")
        playback = Playback(mark, self._pacer.open_utterance(mark), self._frame_ms)
        self[mark] = playback
        queue_playback(
            self._pacer,
            playback,
            audio,
            fmt=self._format,
            frame_bytes=self._frame_bytes,
            spawn=self._spawn,
        )
        return playback

    def forget_done(self) -> None:
        """Drop the playbacks that have resolved."""
        for mark in [mark for mark, playback in self.items() if playback.done]:
            del self[mark]

    def cut_short(self) -> PlayoutResult | None:
        """Barge-in: every playback resolves as not completed and is forgotten; the outcome
        of the one the caller was hearing (None if none was playing)."""
        current = cut_short(self.values())
        self.clear()
        return current

    def end(self) -> None:
        """The leg is over: the pacer writes nothing more, no playback completes."""
        self._pacer.stop()
        for playback in self.values():
            playback.resolve(completed=False)
        self.clear()


def queue_playback(
    pacer: Pacer,
    playback: Playback,
    audio: bytes | AsyncIterable[bytes],
    *,
    fmt: AudioFormat,
    frame_bytes: int,
    spawn: Callable[[Coro[None]], None],
) -> None:
    """Cut ``audio`` (wire-format bytes, any chunking) into the frames of ``playback``'s
    utterance: bytes at once, a stream (TTS) as it comes, by a task ``spawn`` starts."""
    framer = Framer(frame_bytes, pad_byte=fmt.silence_byte)
    if isinstance(audio, bytes | bytearray | memoryview):
        pacer.extend(playback.utterance, framer.push(audio))
        finish_playback(pacer, playback, framer)
    else:
        spawn(feed_playback(pacer, playback, framer, audio))


def finish_playback(pacer: Pacer, playback: Playback, framer: Framer) -> None:
    """Queue the last partial frame (silence-padded: Asterisk would drop it) and close the run."""
    tail = framer.flush()
    if tail is not None:
        pacer.extend(playback.utterance, (tail,))
    pacer.finish(playback.utterance)


async def feed_playback(
    pacer: Pacer, playback: Playback, framer: Framer, source: AsyncIterable[bytes]
) -> None:
    """Move a streaming source (TTS) into the pacer as frames, paced by its back-pressure."""
    try:
        async for chunk in source:
            await pacer.wait_for_room()
            if playback.done or pacer.stopped():
                break
            pacer.extend(playback.utterance, framer.push(chunk))
    except Exception:
        # A failing audio source (TTS provider) ends this utterance, not the call.
        log.exception("media: audio source for %s failed", playback.id)
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
        if not playback.done:
            finish_playback(pacer, playback, framer)
