"""Fast, scriptable fakes for the provider seams and the output sink."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence

from voicedock.pipeline.dialogue.events import CallEvents, MessageAdded
from voicedock.pipeline.frames import ChatMessage, ToolCall, TranscriptEntry
from voicedock.pipeline.providers.base import ProviderError
from voicedock.pipeline.providers.registry import llm_registry, stt_registry, tts_registry
from voicedock.pipeline.tools import ToolSpec


class FakeStt:
    def __init__(self, texts: Sequence[str] = (), *, delay: float = 0.0) -> None:
        self.texts = list(texts)
        self.delay = delay
        self.calls: list[int] = []  # bytes of audio per call
        self.error: ProviderError | None = None
        self.running = 0
        self.most_running = 0  # transcriptions under way at once, at most

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        self.calls.append(len(pcm))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.running -= 1
        if self.error is not None:
            raise self.error
        return self.texts.pop(0) if self.texts else ""

    async def aclose(self) -> None:
        return None


class FakeLlm:
    """Replies with scripted chunk lists (one per call), or echoes the last message."""

    def __init__(
        self,
        replies: Sequence[str | Sequence[str]] = (),
        *,
        error: ProviderError | None = None,
        first_token_delay: float = 0.0,
        chunk_delay: float = 0.0,
        hold: asyncio.Event | None = None,
    ) -> None:
        """``chunk_delay``: a slow stream, each chunk after the first this late. ``hold``: no
        reply begins before the test sets it (a model that is slow until the test says so)."""
        self.replies = list(replies)
        self.error = error
        self.first_token_delay = first_token_delay
        self.hold = hold
        self.chunk_delay = chunk_delay
        self.calls: list[list[ChatMessage]] = []
        self.last_chunk_at: list[float] = []  # loop time each reply's last chunk was given

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        self.calls.append(list(messages))
        if self.first_token_delay:
            await asyncio.sleep(self.first_token_delay)
        if self.hold is not None:
            await self.hold.wait()
        if self.error is not None:
            raise self.error
        reply = self.replies.pop(0) if self.replies else f"You said {messages[-1].content}."
        chunks = [reply] if isinstance(reply, str) else list(reply)
        for i, chunk in enumerate(chunks):
            if i and self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            if i == len(chunks) - 1:
                self.last_chunk_at.append(asyncio.get_running_loop().time())
            yield chunk

    async def aclose(self) -> None:
        return None


class ToolFirstLlm(FakeLlm):
    """Calls ``tool`` first, then says ``then`` once it has the tool's result."""

    def __init__(self, tool: str, then: str) -> None:
        super().__init__()
        self.tool, self.then = tool, then

    async def stream_with_tools(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[str | ToolCall]:
        self.calls.append(list(messages))
        if not any(m.role == "tool" for m in messages):
            yield ToolCall("call-1", self.tool, "{}")
            return
        yield self.then


class FakeTts:
    """Each sentence becomes `ms_per_char` ms of a constant tone-ish PCM per character."""

    def __init__(self, sample_rate: int = 8000, *, ms_per_char: int = 10) -> None:
        self._rate = sample_rate
        self.ms_per_char = ms_per_char
        self.texts: list[str] = []
        self.error: ProviderError | None = None

    @property
    def sample_rate(self) -> int:
        return self._rate

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        self.texts.append(text)
        if self.error is not None:
            raise self.error
        samples = self._rate * self.ms_per_char * len(text) // 1000
        yield b"\x10\x00" * samples

    async def aclose(self) -> None:
        return None


class FakeHandle:
    def __init__(self, duration_ms: float) -> None:
        self._duration = duration_ms
        self.played_ms = 0.0
        self.flushed = False
        self._started = asyncio.Event()
        self._started.set()  # queued audio reaches the wire at once in this fake
        self._done = asyncio.Event()

    @property
    def duration_ms(self) -> float:
        return self._duration

    def advance(self, ms: float) -> float:
        """Play up to `ms`; returns the unused remainder."""
        if self._done.is_set():
            return ms
        used = min(ms, self._duration - self.played_ms)
        self.played_ms += used
        if self.played_ms >= self._duration:
            self._done.set()
        return ms - used

    async def started(self) -> None:
        await self._started.wait()

    async def played(self) -> None:
        await self._done.wait()

    async def flush(self) -> float:
        self.flushed = True
        self._done.set()
        return self.played_ms


class FakeSink:
    """Records queued audio. Playback advances only when the test says so (or instantly)."""

    def __init__(self, *, instant: bool = False) -> None:
        self.instant = instant
        self.handles: list[FakeHandle] = []
        self.rates: list[int] = []
        self.queued_at: list[float] = []  # loop time of each play()
        self.audio_bytes = 0

    async def play(self, pcm: bytes, sample_rate: int) -> FakeHandle:
        handle = FakeHandle(len(pcm) / 2 * 1000 / sample_rate)
        self.handles.append(handle)
        self.queued_at.append(asyncio.get_running_loop().time())
        self.rates.append(sample_rate)
        self.audio_bytes += len(pcm)
        if self.instant:
            handle.advance(handle.duration_ms)
        return handle

    def advance(self, ms: float) -> None:
        """Play `ms` of queued audio in order."""
        for handle in self.handles:
            ms = handle.advance(ms)
            if ms <= 0:
                break

    def play_all(self) -> None:
        self.advance(float("inf"))


class FakeIncrementalStt:
    """An `IncrementalStt` that records what it was asked: (audio bytes, prefix) per call.
    ``texts`` answers in order (then the last again); with ``hold`` each transcription waits
    until ``release()``."""

    def __init__(self, texts: Sequence[str] = ("",), *, hold: bool = False) -> None:
        self.texts = list(texts)
        self.calls: list[tuple[int, str]] = []
        self.incremental = True
        self.error: ProviderError | None = None
        self.running = 0
        self.most_running = 0
        self._hold = hold
        self._gate = asyncio.Event()

    def release(self) -> None:
        self._gate.set()
        self._gate = asyncio.Event()

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        return await self.transcribe_continuing(pcm, sample_rate, "")

    async def transcribe_continuing(self, pcm: bytes, sample_rate: int, prefix: str) -> str:
        self.calls.append((len(pcm), prefix))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            if self._hold:
                await self._gate.wait()
            else:
                await asyncio.sleep(0)
        finally:
            self.running -= 1
        if self.error is not None:
            raise self.error
        return self.texts.pop(0) if len(self.texts) > 1 else self.texts[0]

    async def aclose(self) -> None:
        return None


def told_into(messages: list[TranscriptEntry]) -> CallEvents:
    """A call's events whose final messages (``MessageAdded``) go into ``messages``."""
    events = CallEvents()
    events.subscribe(MessageAdded, lambda added: messages.append(added.entry))
    return events


def told_messages(seen: list[str]) -> CallEvents:
    """A call's events that note each message told (``MessageAdded``) in ``seen``."""
    events = CallEvents("test")
    events.subscribe(MessageAdded, lambda added: seen.append(added.entry.content))
    return events


@contextlib.contextmanager
def registered(name: str, stt: FakeStt, llm: FakeLlm, tts: FakeTts) -> Iterator[None]:
    """The fakes are the speech providers named ``name`` while it lasts (a service's calls
    made with ``[speech]`` naming them get them)."""
    stt_registry.register(name, lambda _c, _e: stt)
    llm_registry.register(name, lambda _c, _e: llm)
    tts_registry.register(name, lambda _c, _e: tts)
    try:
        yield
    finally:
        for registry in (stt_registry, llm_registry, tts_registry):
            registry._factories.pop(name, None)  # type: ignore[attr-defined]
