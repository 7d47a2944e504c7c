"""Turn a streamed LLM reply into speakable sentences, with a first-token deadline."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence

from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.providers.base import Llm, ProviderTimeoutError
from voicedock.pipeline.text import SentenceBuffer


async def llm_sentences(
    llm: Llm,
    messages: Sequence[ChatMessage],
    *,
    first_token_timeout_s: float,
    on_first_token: Callable[[], None] | None = None,
) -> AsyncIterator[str]:
    """Yield each complete sentence of the reply as soon as the model has produced it."""
    stream = llm.stream(messages)
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
        for sentence in buffer.push(first):
            yield sentence
        async for chunk in stream:
            for sentence in buffer.push(chunk):
                yield sentence
        for sentence in buffer.flush():
            yield sentence
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
