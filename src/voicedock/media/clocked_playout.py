"""``ClockedPlayout``: the assistant's audio on a leg where the PBX keeps no queue of it.

Over RTP and AudioSocket, Asterisk plays a frame the moment it arrives: nothing waits at the
PBX to be played, cut or reported. So each frame is written at its due time (one per 20 ms,
``Pacer`` driven by a clock with nothing written ahead) and is heard then: a playback is
confirmed frame by frame as its frames are written, and completes when its last frame is. A
barge-in drops what is queued here, and that is all there is to drop: the caller stops hearing
the assistant within a frame.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable

from voicedock.aio import Coro
from voicedock.domain.audio import AudioFormat
from voicedock.media.pacer import FRAME_PERIOD, Pacer, PacerHooks, Utterance
from voicedock.media.playback import Playback, Playbacks, PlayoutResult
from voicedock.weak import weak_method

__all__ = ["ClockedPlayout"]


class ClockedPlayout:
    """The playbacks of one media leg, heard as they are written."""

    def __init__(
        self,
        write_frame: Callable[[bytes], None],
        spawn: Callable[[Coro[None]], None],
        *,
        fmt: AudioFormat,
        frame_bytes: int,
        silence: bytes,
        max_queued_frames: int = 250,
        flush_writes: Callable[[], None] | None = None,
        congested: Callable[[], bool] | None = None,
    ) -> None:
        """``write_frame``: one frame onto the wire, at once (inside the clock's visit);
        ``spawn``: the session's, for audio that streams in; ``congested``: the connection
        has not taken what was written (the frame waits for the next visit)."""
        hooks = PacerHooks(
            on_utterance_done=weak_method(self._utterance_done),
            on_frame_sent=weak_method(self._frame_sent),
            flush_writes=flush_writes,
            congested=congested,
        )
        self.pacer = Pacer(write_frame, silence, hooks, max_queued_frames=max_queued_frames)
        self._playbacks = Playbacks(self.pacer, fmt=fmt, frame_bytes=frame_bytes, spawn=spawn)

    def play(self, audio: bytes | AsyncIterable[bytes], *, mark: str | None = None) -> Playback:
        """Queue assistant audio (wire format bytes, any chunking) behind what is queued already."""
        return self._playbacks.play(audio, mark)

    def flush(self) -> PlayoutResult | None:
        """Barge-in: drop everything queued; the outcome of the utterance the caller was
        hearing (None if none was playing)."""
        self.pacer.clear()
        self.pacer.restart()
        return self._playbacks.cut_short()

    def end(self) -> None:
        """The leg is over: nothing more is written, no playback completes."""
        self._playbacks.end()

    # --- the pacer's side (inside the clock's visit) ----------------------------------------

    def _frame_sent(self, utterance: Utterance, due: float) -> None:
        playback = self._playbacks.get(utterance.id)
        if playback is not None:
            # Written at its due time and played as it arrives: heard through its end.
            playback.confirm(utterance.frames_sent, now=due + FRAME_PERIOD)

    def _utterance_done(self, utterance: Utterance) -> None:
        playback = self._playbacks.pop(utterance.id, None)
        if playback is not None:
            playback.confirm(utterance.frames_sent)
            playback.resolve(completed=True)
