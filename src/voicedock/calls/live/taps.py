"""A live call's two sides to its recording and its live listeners.

With a ``CallRecorder`` the call is recorded from its own media stream: the caller's frames as
they arrive (``caller``), the assistant's as the pacer sends them (``Pacer.heard``), until the
call ends or a transfer takes the caller away (``stop_recording``). The same two taps feed
``listen`` (``media/listen_tap.py``), the call's live listeners, while anyone listens. The pacer's
tap is set once the dialogue runs (``start``) while the recording or a listener needs it.
In secure mode (``secure_keypad.py``: a secure keypad entry) both sides are silence to both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np

from voicedock.calls.live.redacted_audio import Stretch
from voicedock.calls.live.secure_keypad import SecureKeypad
from voicedock.logs import describe
from voicedock.media.call_media import CallMedia
from voicedock.media.codecs import Int16Array, decode
from voicedock.media.heard_timeline import HeardTimeline
from voicedock.media.listen_tap import ListenTap
from voicedock.media.recording import CallRecorder, RecordingError
from voicedock.weak import weak_method

log = logging.getLogger("voicedock.calls")


class CallTaps:
    def __init__(
        self, media: CallMedia, recorder: CallRecorder | None, secure: SecureKeypad | None = None
    ) -> None:
        self._media, self._recorder, self._secure = media, recorder, secure
        # The call's live listeners: fed from the recording's taps while anyone listens.
        self.listen = ListenTap(media.format.sample_rate, on_active=weak_method(self._listening))
        self._running = False  # the dialogue runs: the assistant speaks through the pacer
        # Where the caller's audio as heard lies in the recording (``keep_timeline``).
        self._timeline: HeardTimeline | None = None

    def keep_timeline(self) -> None:
        """Keep where each caller frame lies in the recording, for ``silence_recording``'s
        stretches counted in the caller's audio (a redaction plan's words)."""
        if self._recorder is not None and self._timeline is None:
            self._timeline = HeardTimeline()

    def caller(self, samples: Int16Array, muted: bool, gap: bool = False) -> None:
        """A caller frame, decoded, heard now: to the recording and the listeners; ``muted``:
        the call is in secure mode now (they get silence), as the caller's input judged it;
        ``gap``: silence the media filled in for a gap in the caller's audio."""
        if muted:
            samples = np.zeros_like(samples)
        if self._recorder is not None:
            placed = self._recorder.caller(samples, gap=gap)
            if self._timeline is not None:
                duration = len(samples) / self._recorder.sample_rate
                self._timeline.add(time.time(), duration, placed)
        if self.listen.active:
            self.listen.caller(samples)

    def start(self) -> None:
        """The dialogue runs: what the pacer sends is tapped, if anything needs it."""
        self._running = True
        if self._recorder is not None or self.listen.active:
            self._media.pacer.heard.tap = self._sent

    def stop_recording(self) -> None:
        """A transfer takes the caller off this media: the recording ends here."""
        if self._recorder is not None:
            self._recorder.stop()

    @property
    def recording(self) -> bool:
        """The call's audio is recorded (not discarded by the caller's answer)."""
        return self._recorder is not None and not self._recorder.discarded

    def silence_recording(self, stretches: Sequence[Stretch]) -> None:
        """Each stretch of the call silent in its recording: one counted back in the caller's
        audio from a frame the dialogue decided on, where the timeline puts it (exact however
        the frames came); any other, by the clock."""
        if self._recorder is None:
            return
        offset = time.monotonic() - time.time()  # the recorder's clock: monotonic
        for stretch in stretches:
            if (placed := self._placed(stretch)) is not None:
                self._recorder.silence_in_file(*placed)
            else:
                self._recorder.silence(stretch.start + offset, stretch.end + offset)

    def _placed(self, stretch: Stretch) -> tuple[float, float] | None:
        """Where in the file ``stretch`` is, by the timeline (None: not known there)."""
        anchor, timeline = stretch.counted_from, self._timeline
        if anchor is None or timeline is None:
            return None
        first = timeline.placed(anchor, anchor - stretch.start)
        last = timeline.placed(anchor, anchor - stretch.end)
        return None if first is None or last is None else (first, last)

    async def close_recording(self) -> float | None:
        """Close the recording; its duration in seconds (None: not recorded, or lost)."""
        recorder = self._recorder
        if recorder is None:
            return None
        if self._media.pacer.heard.tap == self._sent and not self.listen.active:
            self._media.pacer.heard.tap = None
        try:
            duration = round(await recorder.aclose(), 3)
        except RecordingError as exc:
            log.warning("call recording lost: %s", describe(exc))
            return None
        return None if recorder.discarded else duration  # discarded: never recorded

    def _sent(self, frame: bytes, at: float | None) -> None:
        """The pacer's tap: a frame the caller hears, to the recording and the listeners."""
        samples = self._unless_secure(decode(self._media.format, frame), at)
        if self._recorder is not None:
            self._recorder.assistant(samples, at)
        if self.listen.active:
            self.listen.assistant(samples, at)

    def _unless_secure(self, samples: Int16Array, at: float | None) -> Int16Array:
        """``samples`` heard at ``at`` (None: now), or as much silence in secure mode."""
        if self._secure is not None and self._secure.muted(at):
            return np.zeros_like(samples)
        return samples

    def _listening(self, active: bool) -> None:
        """The first listener came, or the last one left: the pacer's tap follows, unless
        the recording needs it anyway."""
        pacer = self._media.pacer
        if active and pacer.heard.tap is None and self._running:
            pacer.heard.tap = self._sent
        elif not active and self._recorder is None and pacer.heard.tap == self._sent:
            pacer.heard.tap = None
