"""A local-engine stand-in (``SentenceTts``) whose syntheses can be held back by the test."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator


class GatedTts:
    """``SentenceTts``: a sentence becomes 10 ms of PCM per character; a sentence in
    ``hold`` waits until the test opens its gate."""

    def __init__(self, sample_rate: int = 8000, voice: str = "fake") -> None:
        self._rate = sample_rate
        self.voice = voice
        self.synthesized: list[str] = []  # in the order the syntheses started
        self.hold: dict[str, threading.Event] = {}
        self.started = threading.Event()
        self._lock = threading.Lock()

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def voice_identity(self) -> str:
        return f"gated|{self.voice}|{self._rate}"

    def gate(self, sentence: str) -> threading.Event:
        gate = self.hold[sentence] = threading.Event()
        return gate

    def synthesize_sentence(self, sentence: str) -> bytes:
        with self._lock:
            self.synthesized.append(sentence)
        self.started.set()
        gate = self.hold.get(sentence)
        if gate is not None and not gate.wait(10):
            raise TimeoutError(sentence)
        return b"\x10\x00" * (self._rate * 10 * len(sentence) // 1000)

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        yield await asyncio.to_thread(self.synthesize_sentence, text)

    async def aclose(self) -> None:
        return None
