"""``PlayoutMarks``: the assistant's audio to Asterisk, and what the caller heard of it.

Each ``play`` opens an utterance on the session's ``Pacer``, which the process's ``MediaClock``
writes ahead through the ``FrameWriter``. Asterisk plays what it is sent in order and reports
each ``MARK_MEDIA`` it reaches (``MEDIA_MARK_PROCESSED``), so a mark is written right behind
the last frame of every utterance (the playback completes when Asterisk reaches it) and every
``checkpoint_frames`` frames within it (how much the caller heard so far: a barge-in knows
where it cut the sentence). Speech that starts while only silence is queued at Asterisk cuts
that silence (``FLUSH_MEDIA``), writing again the marks of speech the flush dropped, so their
playbacks still complete. ``flush`` is the barge-in: everything queued here and in Asterisk
goes, and every unfinished playback resolves as not completed.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable

from voicedock.aio import Coro
from voicedock.domain.audio import AudioFormat
from voicedock.media.pacer import Pacer, PacerHooks, Utterance
from voicedock.media.playback import Playback, Playbacks, PlayoutResult
from voicedock.pbx.asterisk.media import chan_websocket as wire
from voicedock.pbx.asterisk.media.frame_writer import FrameWriter
from voicedock.weak import weak_method

__all__ = ["PlayoutMarks"]


class PlayoutMarks:
    """The playbacks of one media session, confirmed by Asterisk's marks."""

    def __init__(
        self,
        writer: FrameWriter,
        send_command: Callable[[wire.Command], Awaitable[None]],
        spawn: Callable[[Coro[None]], None],
        *,
        fmt: AudioFormat,
        control_format: wire.ControlFormat,
        frame_bytes: int,
        silence: bytes,
        checkpoint_frames: int = 10,
        send_silence: bool = True,
        max_queued_frames: int = 250,
    ) -> None:
        """``send_command``: the session's (a command awaited, outside the clock's visit);
        ``spawn``: the session's, for audio that streams in."""
        self._writer = writer
        self._send_command = send_command
        self._control_format = control_format
        self._checkpoint_frames = checkpoint_frames
        self.pacer = Pacer(
            writer.binary,
            silence,
            self._pacer_hooks(writer),
            send_silence=send_silence,
            max_queued_frames=max_queued_frames,
        )
        self._playbacks = Playbacks(self.pacer, fmt=fmt, frame_bytes=frame_bytes, spawn=spawn)
        self._checkpoints: dict[str, tuple[Playback, int]] = {}
        self._marks_queued: dict[str, None] = {}  # written, not reported processed yet, in order

    def _pacer_hooks(self, writer: FrameWriter) -> PacerHooks:
        """What the pacer tells the marks (each frame sent, each utterance done, speech after
        silence written ahead) and asks the websocket's writer."""
        return PacerHooks(
            on_utterance_done=weak_method(self._utterance_done),
            on_frame_sent=weak_method(self._frame_sent),
            congested=writer.is_congested,
            flush_writes=writer.flush,
            on_speech_start=weak_method(self._cut_silence_ahead),
        )

    def play(self, audio: bytes | AsyncIterable[bytes], *, mark: str | None = None) -> Playback:
        """Queue assistant audio (wire format bytes, any chunking) behind what is queued already."""
        if mark is not None:
            wire.validate_correlation_id(mark)  # a mark goes to Asterisk as one
        return self._playbacks.play(audio, mark)

    async def flush(self) -> PlayoutResult | None:
        """Barge-in: drop everything queued here and in Asterisk; the outcome of the utterance
        the caller was hearing (None if none was playing)."""
        self.pacer.clear()
        await self._send_command(wire.Command.FLUSH_MEDIA)
        await self._send_command(wire.Command.CONTINUE_MEDIA)  # FLUSH does not unpause
        self.pacer.restart()  # what was written ahead is gone: silence from now on
        current = self._playbacks.cut_short()
        self._forget_marks()
        return current

    def end(self) -> None:
        """The session is over: nothing more is sent, no playback completes."""
        self._playbacks.end()
        self._forget_marks()

    def on_mark(self, mark_id: str) -> None:
        """``MEDIA_MARK_PROCESSED``: Asterisk played up to the mark."""
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

    def _forget_marks(self) -> None:
        self._checkpoints.clear()
        self._marks_queued.clear()

    # --- the pacer's side (inside the clock's visit) ----------------------------------------

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
        self._writer.text(wire.encode_command(wire.Command.FLUSH_MEDIA, self._control_format))
        for mark_id in list(self._marks_queued):
            self._write_mark(mark_id)
        return True

    def _write_mark(self, mark_id: str) -> None:
        """MARK_MEDIA right behind the frame just written, inside the pacer's visit."""
        self._writer.text(
            wire.encode_command(
                wire.Command.MARK_MEDIA, self._control_format, correlation_id=mark_id
            )
        )
        self._marks_queued[mark_id] = None
