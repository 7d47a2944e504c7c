"""``CallRecorder``: one call's audio as voicedock's own media stream carried it, into a file.

Two channels on one timeline: the caller (left) as the PBX delivered their frames, the assistant
(right) as the pacer's frames were due to play on its 20 ms schedule. The pacer hands a frame
over only once its due time has passed and a barge-in drops what was written ahead, so what was
cut is never recorded: the right channel is what the caller heard. Each frame is placed where
its arrival (caller) or its due time (assistant) falls on the recording's clock; a gap longer
than ``slack_frames`` (no frames sent: flow control, a FreeSWITCH leg that sends no silence) is
filled with silence, smaller jitter is absorbed, and where the caller's channel is ahead of the
clock the silence filled in for a gap in their audio (``gap``: the part filled at once, when
the gap is seen, comes after its time; ``media/gap_filler.py``) is let go, so the channels stay
aligned to within a frame or two.

Samples are 16-bit PCM at the call's media rate. The file (WAV or FLAC through soundfile) is
written incrementally by the recorder's own writer thread, a second of aligned audio at a time,
so the event loop never waits on the disk and a long call never sits in memory. Held
(``hold()``, before its first frame), it keeps what it is given in memory and writes nothing,
not even the file, until ``release()`` (then all of it is written, from the start) or
``discard()`` (then nothing ever is): the caller's answer about the recording is awaited
(``calls/live/consent.py``). ``stop()``
ends the recording early (a transfer moves the caller off our media); ``aclose()`` writes the
rest, closes the file and returns its duration (idempotent).

``silence(start, end)`` asks for a stretch of the call to be silent in the file (both
channels): words a redaction plan hid from the transcript, known only once they were
transcribed, after their audio may already be on disk. When the file is complete, the writer
copies it a second at a time with those stretches zeroed, and the copy replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

import numpy as np
from numpy.typing import NDArray

from voicedock.errors import MediaError

log = logging.getLogger("voicedock.media")

RECORDING_FORMATS = ("wav", "flac")
FRAME_S = 0.020
_FLUSH_S = 1.0


class RecordingError(MediaError):
    """The recording file could not be written (the call itself goes on)."""


class _Channel:
    """One side's samples not yet written, and where its timeline has got to."""

    __slots__ = ("chunks", "end", "pending")

    def __init__(self) -> None:
        self.chunks: list[NDArray[np.int16]] = []
        self.pending = 0  # samples in ``chunks``
        self.end = 0  # samples placed on the timeline so far (written or pending)

    def place(self, samples: NDArray[np.int16], start: int, slack: int, gap: bool) -> int:
        """Place a frame due at ``start``; returns where its first sample went (a gap's
        silence let go: where it would have)."""
        if start > self.end + slack:  # a gap in the stream: silence where nothing came
            self._append(np.zeros(start - self.end, dtype=np.int16))
        elif gap and self.end > start + len(samples):
            return self.end  # a gap's silence, filled late, where the channel is ahead of the clock
        placed = self.end
        self._append(samples)
        return placed

    def _append(self, samples: NDArray[np.int16]) -> None:
        self.chunks.append(samples)
        self.pending += len(samples)
        self.end += len(samples)

    def take(self, count: int) -> NDArray[np.int16]:
        """The first ``count`` pending samples (zero-padded past what there is)."""
        joined = np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.int16)
        head, rest = joined[:count], joined[count:]
        self.chunks = [rest] if len(rest) else []
        self.pending = len(rest)
        if len(head) < count:
            head = np.concatenate((head, np.zeros(count - len(head), dtype=np.int16)))
        return head


class CallRecorder:
    """Records one call (caller left, assistant right); ``async with`` or ``aclose()``."""

    def __init__(
        self,
        path: Path,
        sample_rate: int,
        *,
        file_format: str = "wav",
        slack_frames: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if file_format not in RECORDING_FORMATS:
            raise ValueError(f"recording format must be one of {RECORDING_FORMATS}")
        self.path = path
        self.sample_rate = sample_rate
        self.file_format = file_format
        self._clock = clock
        self._t0 = clock()
        self._slack = int(slack_frames * FRAME_S * sample_rate)
        self._flush_at = int(_FLUSH_S * sample_rate)
        self._caller = _Channel()
        self._assistant = _Channel()
        self._written = 0  # stereo samples handed to the writer
        self._silences: list[tuple[int, int]] = []  # sample ranges zeroed once written
        self._stopped = False
        self._held = False  # nothing is written until release() (or ever, after discard())
        self._discarded = False
        self._closed = False
        self._blocks: queue.SimpleQueue[NDArray[np.int16] | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._writer = threading.Thread(target=self._write_file, name="call-recorder", daemon=True)
        self._writer.start()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def discarded(self) -> bool:
        return self._discarded

    @property
    def duration_s(self) -> float:
        """What the recording holds so far (both channels, the longer one)."""
        return max(self._caller.end, self._assistant.end) / self.sample_rate

    # -- the two sides ----------------------------------------------------------------------
    def caller(
        self, samples: NDArray[np.int16], at: float | None = None, *, gap: bool = False
    ) -> float:
        """A frame from the caller, received at ``at`` (the recorder's clock; default now);
        ``gap``: silence filled in for a gap in their audio (``GapFrame``). Returns where in
        the file (seconds) its first sample is, or would be (a gap's silence let go, a
        stopped recording): ``silence_in_file`` takes such places."""
        return self._place(self._caller, samples, at, gap) / self.sample_rate

    def assistant(self, samples: NDArray[np.int16], at: float | None = None) -> None:
        """A frame the pacer sent to the caller at ``at``."""
        self._place(self._assistant, samples, at, False)

    def _place(
        self, channel: _Channel, samples: NDArray[np.int16], at: float | None, gap: bool
    ) -> int:
        if self._stopped:
            return channel.end
        now = self._clock() if at is None else at
        start = max(0, round((now - self._t0) * self.sample_rate))
        placed = channel.place(np.asarray(samples, dtype=np.int16), start, self._slack, gap)
        aligned = min(self._caller.pending, self._assistant.pending)
        if aligned >= self._flush_at and not self._held:
            self._flush(aligned)
        return placed

    def _flush(self, count: int) -> None:
        block = np.empty((count, 2), dtype=np.int16)
        block[:, 0] = self._caller.take(count)
        block[:, 1] = self._assistant.take(count)
        self._written += count
        self._blocks.put(block)

    def silence(self, start: float, end: float) -> None:
        """The call from ``start`` to ``end`` (the recorder's clock) is silent in the file."""
        self.silence_in_file(start - self._t0, end - self._t0)

    def silence_in_file(self, first_s: float, last_s: float) -> None:
        """The file from ``first_s`` to ``last_s`` (seconds from its start) is silent."""
        first = max(0, round(first_s * self.sample_rate))
        last = max(first, round(last_s * self.sample_rate))
        if last > first:
            self._silences.append((first, last))

    def hold(self) -> None:
        """Write nothing until ``release()`` or ``discard()`` (before anything was given)."""
        if self._written or self._caller.end or self._assistant.end:
            raise RuntimeError("a recording is held before its first frame")
        self._held = True

    def release(self) -> None:
        """A held recording goes on: what it holds is written, and what follows."""
        self._held = False

    def discard(self) -> None:
        """A held recording is dropped: what it holds and what follows is never written, and
        no file is made (``aclose()`` returns 0)."""
        if not self._held:
            raise RuntimeError("only a held recording can be discarded")
        self._discarded = self._stopped = True
        self._caller, self._assistant = _Channel(), _Channel()

    def stop(self) -> None:
        """Record nothing more (a transfer took the caller away); ``aclose()`` still writes."""
        self._stopped = True

    async def aclose(self) -> float:
        """Write what is left, close the file; returns the duration in seconds (idempotent).

        Raises ``RecordingError`` when the file could not be written.
        """
        if not self._closed:
            self._closed = True
            self._stopped = True
            rest = max(self._caller.pending, self._assistant.pending)
            if rest and not self._discarded:
                self._flush(rest)
            self._blocks.put(None)
            await asyncio.to_thread(self._writer.join)
        if self._error is not None:
            raise RecordingError(f"recording not written: {type(self._error).__name__}")
        return self._written / self.sample_rate

    # -- the writer thread --------------------------------------------------------------------
    def _write_file(self) -> None:
        import soundfile

        block = self._blocks.get()  # the file is made once there is something (or the end)
        if block is None and self._discarded:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with soundfile.SoundFile(
                str(self.path),
                mode="w",
                samplerate=self.sample_rate,
                channels=2,
                subtype="PCM_16",
                format=self.file_format.upper(),
            ) as out:
                while block is not None:
                    out.write(block)
                    block = self._blocks.get()
            if self._silences:
                self._silence_file()
        except Exception as exc:  # noqa: BLE001 - reported by aclose(); the call goes on
            self._error = exc
            log.warning("recording not written: %s", type(exc).__name__)
            while block is not None and self._blocks.get() is not None:  # let aclose() finish
                pass
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)

    def _silence_file(self) -> None:
        """The finished file copied a second at a time with the silenced stretches zeroed."""
        import soundfile

        partial = self.path.with_name(self.path.name + ".partial")
        try:
            with (
                soundfile.SoundFile(str(self.path)) as source,
                soundfile.SoundFile(
                    str(partial),
                    mode="w",
                    samplerate=self.sample_rate,
                    channels=2,
                    subtype="PCM_16",
                    format=self.file_format.upper(),
                ) as out,
            ):
                position = 0
                for block in source.blocks(blocksize=self._flush_at, dtype="int16"):
                    end = position + len(block)
                    for first, last in self._silences:
                        if first < end and last > position:
                            block[max(first, position) - position : min(last, end) - position] = 0
                    out.write(block)
                    position = end
            os.replace(partial, self.path)
        finally:
            partial.unlink(missing_ok=True)
