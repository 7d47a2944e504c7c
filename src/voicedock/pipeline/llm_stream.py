"""Turn a streamed LLM reply into speakable sentences, with a first-token deadline and a
limit on how long the stream may stop midway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from voicedock.pipeline.frames import ToolCall
from voicedock.pipeline.providers.base import ProviderTimeoutError
from voicedock.pipeline.text import SentenceBuffer


async def reply_sentences(
    stream: AsyncIterator[str] | AsyncIterator[str | ToolCall],
    *,
    first_token_timeout_s: float,
    stall_timeout_s: float | None = None,
    on_first_token: Callable[[], None] | None = None,
) -> AsyncIterator[str | ToolCall]:
    """Each complete sentence of a streamed reply as soon as it is there, and the reply's tool
    calls as they come (the text before a call is flushed first). The first item (text or a
    tool call) must come within ``first_token_timeout_s``."""
    buffer = SentenceBuffer()
    try:
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel (barge-in).
            async with asyncio.timeout(first_token_timeout_s):
                first = await anext(stream)
        except StopAsyncIteration:
            return
        except TimeoutError as exc:
            raise ProviderTimeoutError("the language model gave no first token in time") from exc
        if on_first_token is not None:
            on_first_token()
        item: str | ToolCall = first
        while True:
            if isinstance(item, ToolCall):
                for sentence in buffer.flush():
                    yield sentence
                yield item
            else:
                for sentence in buffer.push(item):
                    yield sentence
            try:
                async with asyncio.timeout(stall_timeout_s):
                    item = await anext(stream)
            except StopAsyncIteration:
                break
            except TimeoutError as exc:
                raise ProviderTimeoutError("the language model's reply stopped midway") from exc
        for sentence in buffer.flush():
            yield sentence
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
