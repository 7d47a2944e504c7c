"""``Dialogue``: what a live call drives, whichever engine speaks on it.

``TurnEngine`` (VAD → STT → LLM → TTS) and ``RealtimeDialogue`` (a speech-to-speech provider
with voicedock's own TTS for what must be said verbatim) both implement it, and so does
``RealtimeWithPipeline`` (``pipeline/dialogue/realtime_fallback.py``: the one, then the other).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, Self

from voicedock.pipeline.frames import ChatMessage, ContextSource, TranscriptEntry, TurnLatency


class Dialogue(Protocol):
    @property
    def transcript(self) -> list[TranscriptEntry]:
        """What was said so far, in spoken order (assistant messages as heard)."""
        ...

    @property
    def latencies(self) -> list[TurnLatency]: ...

    async def __aenter__(self) -> Self: ...

    async def aclose(self, on_quiet: Callable[[], Awaitable[None]] | None = None) -> None:
        """Stop now (no final speech). ``on_quiet`` is awaited once nothing is being said any
        more and before the slower wind-down (the caller's last words transcribed), so the
        line can be hung up without waiting for it. Idempotent (``on_quiet`` runs at most
        once, and not at all when already closed)."""
        ...

    async def wait_ended(self) -> str: ...

    def feed_audio(self, pcm: bytes) -> None:
        """16-bit mono PCM at the call's rate; cheap, once per frame."""
        ...

    def feed_dtmf(self, digit: str) -> None: ...

    @property
    def assistant_audible(self) -> bool:
        """Something the assistant says is playing."""
        ...

    async def say(self, text: str) -> None: ...

    async def inject_context(
        self, text: str, trigger_response: bool = False, source: ContextSource = "api"
    ) -> None:
        """Context for the model; from a ``supervisor`` also a transcript entry of its own."""
        ...

    async def end_call(self, final_message: str | None = None) -> None: ...

    @property
    def history(self) -> list[ChatMessage]: ...
