"""The seams between the turn engine and speech providers, and their error tree.

    voicedock.errors.ProviderError(retryable)
     ├── ProviderConfigError        bad or unknown configuration (never retryable)
     ├── ProviderUnavailableError   model files / binaries missing (never retryable)
     ├── ProviderTimeoutError       no answer in time (retryable)
     ├── ProviderRateLimitError     429-style back-off request (retryable)
     ├── ProviderConnectionError    transport broke (retryable)
     └── ProviderResponseError      the provider answered with something unusable

Adapters translate their low-level errors into this tree at their I/O boundary, so the
engine decides about fallbacks from `retryable` alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, runtime_checkable

from voicedock.errors import ProviderError
from voicedock.pipeline.frames import ChatMessage, ToolCall, Transcript
from voicedock.pipeline.tools import ToolSpec

__all__ = [
    "IncrementalStt",
    "Llm",
    "LocalStt",
    "ProviderConfigError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderRateLimitError",
    "ProviderResponseError",
    "ProviderServerError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "SentenceTts",
    "StreamingStt",
    "Stt",
    "SttStream",
    "ToolCallingLlm",
    "Tts",
    "first_in_time",
    "next_in_time",
]


class ProviderConfigError(ProviderError):
    """Bad or unknown provider configuration."""


class ProviderUnavailableError(ProviderError):
    """Model files, binaries or packages are missing."""


class _RetryableProviderError(ProviderError):
    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message, retryable=retryable)


class ProviderTimeoutError(_RetryableProviderError):
    pass


class ProviderRateLimitError(_RetryableProviderError):
    pass


class ProviderConnectionError(_RetryableProviderError):
    pass


T = TypeVar("T")


async def next_in_time(
    items: AsyncIterator[T], timeout_s: float | None, late: str
) -> tuple[T] | None:
    """The next of a provider's ``items`` (in a 1-tuple; None at their end), which must come
    within ``timeout_s`` (None: no limit), else ``ProviderTimeoutError(late)``."""
    try:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel (barge-in).
        async with asyncio.timeout(timeout_s):
            return (await anext(items),)
    except StopAsyncIteration:
        return None
    except TimeoutError as exc:
        raise ProviderTimeoutError(late) from exc


async def first_in_time(
    items: AsyncIterator[T], timeout_s: float | None, late: str
) -> AsyncIterator[T]:
    """A provider's ``items``, whose first must come within ``timeout_s`` (None: no limit),
    else ``ProviderTimeoutError(late)``; ``items`` is closed when this is."""
    try:
        got = await next_in_time(items, timeout_s, late)
        if got is None:
            return
        yield got[0]
        async for item in items:
            yield item
    finally:
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()


class ProviderResponseError(ProviderError):
    pass


class ProviderServerError(ProviderResponseError):
    """The provider's server answered with an error of its own (HTTP 5xx): it may answer the
    same request later or elsewhere."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message, retryable=retryable)


@runtime_checkable
class Stt(Protocol):
    """Utterance-based speech recognition: one endpointed utterance in, its text out."""

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        """Transcribe 16-bit mono PCM. Raises ProviderError."""
        ...

    async def aclose(self) -> None: ...


class SttStream(Protocol):
    """A live recognition session of a streaming engine (`async with`, idempotent aclose)."""

    async def push_audio(self, pcm: bytes) -> None: ...

    async def end_input(self) -> None: ...

    def __aiter__(self) -> AsyncIterator[Transcript]: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class IncrementalStt(Stt, Protocol):
    """Optional: local engines cheap enough to transcribe an utterance again and again while
    it is spoken (``pipeline/hearing/streaming_recognition.py``). ``prefix`` is text the audio is
    known to start with (the settled part of earlier transcripts); the result is the whole
    transcript, the prefix included. ``incremental`` is false when configured off."""

    @property
    def incremental(self) -> bool: ...

    async def transcribe_continuing(self, pcm: bytes, sample_rate: int, prefix: str) -> str:
        """Transcribe 16-bit mono PCM that starts with ``prefix``. Raises ProviderError."""
        ...


@runtime_checkable
class LocalStt(IncrementalStt, Protocol):
    """Optional: local engines whose transcription is one blocking call, which the node runs
    in its recognition pool (``pipeline/hearing/recognition.py``) with the other calls' work."""

    def transcribe_blocking(self, pcm: bytes, sample_rate: int, prefix: str) -> str:
        """``transcribe_continuing`` in the calling thread (blocking). Raises ProviderError."""
        ...


@dataclass(frozen=True, slots=True)
class SpokenWord:
    """One word a recognizer heard and when: seconds from the start of the audio given.
    ``text`` is written as the engine writes it in its transcript, with the space before it
    (none: it goes on the word before, as "-1488" in "4539-1488"): the words joined are the
    transcript."""

    text: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class DetectedLanguage:
    """The language a recognizer heard in a stretch of speech (a BCP 47 primary tag) and its
    probability of it (0-1)."""

    language: str
    probability: float


@runtime_checkable
class LanguageDetectingStt(Protocol):
    """Optional: local engines that tell which language a stretch of speech is in, among the
    languages an assistant speaks (``pipeline/hearing/language.py`` follows the caller)."""

    def detect_language_blocking(
        self, pcm: bytes, sample_rate: int, among: frozenset[str]
    ) -> DetectedLanguage | None:
        """The most likely of ``among`` for 16-bit mono PCM (None: no audio, or none of them
        known to the engine), in the calling thread. Raises ProviderError."""
        ...


@runtime_checkable
class WordTimedStt(Stt, Protocol):
    """Optional: engines that tell when each word of a stretch of audio was said (the words
    a redaction plan hides are silenced in the recording by them,
    ``calls/live/redacted_audio.py``)."""

    async def word_times(self, pcm: bytes, sample_rate: int) -> list[SpokenWord]:
        """The words of 16-bit mono PCM with their times (empty: none known). Raises
        ProviderError."""
        ...


@runtime_checkable
class LocalWordTimedStt(Protocol):
    """Optional: a local engine's word times as one blocking call (the node runs it in its
    recognition pool)."""

    def word_times_blocking(self, pcm: bytes, sample_rate: int) -> list[SpokenWord]:
        """``word_times`` in the calling thread (blocking). Raises ProviderError."""
        ...


@runtime_checkable
class StreamingStt(Stt, Protocol):
    """Optional: engines that recognise while the caller speaks also offer a stream."""

    def stream(self, sample_rate: int) -> SttStream: ...


@runtime_checkable
class Llm(Protocol):
    """A conversation policy: the context in, the assistant's reply streamed out as text."""

    def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        """Yield reply text chunks. Raises ProviderError."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ToolCallingLlm(Llm, Protocol):
    """Optional: models that can call functions. The reply's text chunks stream as with
    ``stream``; each complete ``ToolCall`` follows once the model has finished it, and while
    a call's parts arrive an empty text chunk marks each (the model is not silent: a reader's
    stall limit sees it working)."""

    def stream_with_tools(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[str | ToolCall]:
        """Yield text chunks and the tool calls of the reply. Raises ProviderError."""
        ...


@runtime_checkable
class ClosingLlm(ToolCallingLlm, Protocol):
    """Optional: a policy that ends the call itself (a fallback plan's polite close): its
    ``stream_with_tools`` calls ``end_call`` whether or not it was offered."""

    @property
    def ends_call(self) -> bool: ...


@runtime_checkable
class Tts(Protocol):
    """Speech synthesis, streamed as 16-bit mono PCM chunks at `sample_rate`."""

    @property
    def sample_rate(self) -> int: ...

    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Yield PCM chunks (at least one per sentence). Raises ProviderError."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class SentenceTts(Tts, Protocol):
    """Optional: local engines whose audio depends on the text alone (offline Piper,
    espeak-ng). One sentence is synthesized by a blocking call, which the node runs in its
    synthesis pool, and ``voice_identity`` names everything the audio depends on besides the
    text (engine, voice, settings, sample rate): the synthesis cache's key."""

    @property
    def voice_identity(self) -> str: ...

    def synthesize_sentence(self, sentence: str) -> bytes:
        """One sentence → 16-bit mono PCM at ``sample_rate`` (blocking). Raises ProviderError."""
        ...
