"""One whole answer of a language model to one request, read up to a bound: what voicedock
asks a model outside the conversation (the end-of-call analysis, a squad's summary of the call
so far when it is handed over)."""

from __future__ import annotations

from collections.abc import Sequence

from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.providers.base import Llm


async def bounded_answer(llm: Llm, prompt: Sequence[ChatMessage], max_chars: int) -> str:
    """The model's answer to ``prompt``; ``ValueError`` once it is longer than ``max_chars``
    (the rest is not read), ``ProviderError`` as the model raises it."""
    chunks: list[str] = []
    received = 0
    async for chunk in llm.stream(prompt):
        chunks.append(chunk)
        received += len(chunk)
        if received > max_chars:
            raise ValueError(f"the answer is longer than {max_chars} characters")
    return "".join(chunks)
