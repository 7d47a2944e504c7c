"""Turn a streamed LLM reply into speakable sentences, with a first-token deadline and a
limit on how long the stream may stop midway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from voicedock.pipeline.frames import ToolCall
from voicedock.pipeline.providers.base import next_in_time
from voicedock.pipeline.text import SentenceBuffer

# Why a stream failed, when its first token did not come in time.
MODEL_LATE = "the language model gave no first token in time"


async def reply_sentences(
    stream: AsyncIterator[str] | AsyncIterator[str | ToolCall],
    *,
    first_token_timeout_s: float | None = None,
    stall_timeout_s: float | None = None,
    on_first_token: Callable[[], None] | None = None,
) -> AsyncIterator[str | ToolCall]:
    """Each complete sentence of a streamed reply as soon as it is there, and the reply's tool
    calls as they come (the text before a call is flushed first). The first item (text or a
    tool call) must come within ``first_token_timeout_s``, each next one within
    ``stall_timeout_s`` of the one before (None: no limit to either)."""
    buffer = SentenceBuffer()
    try:
        got = await next_in_time(stream, first_token_timeout_s, MODEL_LATE)
        if got is None:
            return
        if on_first_token is not None:
            on_first_token()
        while got is not None:
            (item,) = got
            if isinstance(item, ToolCall):
                for sentence in buffer.flush():
                    yield sentence
                yield item
            else:
                for sentence in buffer.push(item):
                    yield sentence
            got = await next_in_time(
                stream, stall_timeout_s, "the language model's reply stopped midway"
            )
        for sentence in buffer.flush():
            yield sentence
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
