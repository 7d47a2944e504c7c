"""Assistant-side seam: the output sink the media session implements, and what was heard.

The engine queues synthesized audio with `OutputSink.play` and gets a `PlaybackHandle` per
chunk. On barge-in it flushes the handles and asks each how much was actually sent, so the
stored assistant message holds only what the caller could have heard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from voicedock.pipeline.frames import ChatMessage, TranscriptEntry
from voicedock.pipeline.text import first_words


class PlaybackHandle(Protocol):
    @property
    def duration_ms(self) -> float: ...

    async def started(self) -> None:
        """Return once the first frame of this audio was sent to the caller."""
        ...

    async def played(self) -> None:
        """Return once all of it was sent (or it was flushed)."""
        ...

    async def flush(self) -> float:
        """Stop sending this audio now (idempotent); return the milliseconds already sent."""
        ...


class OutputSink(Protocol):
    async def play(self, pcm: bytes, sample_rate: int) -> PlaybackHandle:
        """Queue 16-bit mono PCM behind earlier audio; may wait for back-pressure."""
        ...


class AlreadyHeard:
    """A ``PlaybackHandle`` for audio the caller already heard: a held message that went on
    (``pipeline/dialogue/barge_in.py``) keeps it in place of the audio it does not say again."""

    __slots__ = ("_ms",)

    def __init__(self, duration_ms: float) -> None:
        self._ms = duration_ms

    @property
    def duration_ms(self) -> float:
        return self._ms

    async def started(self) -> None:
        return None

    async def played(self) -> None:
        return None

    async def flush(self) -> float:
        return self._ms


@dataclass(slots=True)
class SpokenSentence:
    text: str
    handles: list[PlaybackHandle] = field(default_factory=list)
    # Each handle's audio (16-bit mono PCM at the call's rate), while the message is spoken:
    # what a hold stopped is queued again from where the caller stopped hearing it.
    audio: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class Speech:
    """One assistant message being spoken: its sentences and their audio handles."""

    slot: ChatMessage | None = None  # its reserved place in the model's history
    started_at: float | None = None  # wall time of the first queued audio
    entry: TranscriptEntry | None = None
    interruptible: bool = True  # False: a barge-in does not cut it (transfer announcement)
    always_recorded: bool = False  # a `say`: in the transcript even if never started
    filler: bool = False  # said while the caller waits: in the transcript, not in the context
    sentences: list[SpokenSentence] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.sentences)

    @property
    def audible(self) -> bool:
        return self.started_at is not None

    async def wait_played(self) -> None:
        for sentence in list(self.sentences):
            for handle in list(sentence.handles):
                await handle.played()

    async def flush(self) -> str:
        """Stop all audio; return the text the caller heard (cut by played time)."""
        heard: list[str] = []
        complete = True
        for sentence in self.sentences:
            played = total = 0.0
            for handle in sentence.handles:
                played += await handle.flush()
                total += handle.duration_ms
            if not complete:
                continue
            if total <= 0.0 or played >= total - 1.0:
                heard.append(sentence.text)
                continue
            complete = False
            partial = first_words(sentence.text, played / total)
            if partial:
                heard.append(partial)
        return " ".join(heard)
