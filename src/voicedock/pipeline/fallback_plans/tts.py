"""An assistant's voice with its fallback plan: a sentence whose synthesis failed is spoken by
the next entry, and the call keeps that voice.

An entry fails a sentence when it raises a provider error or gives no first audio within
``attempt_timeout_s`` (3 s unless the plan says). The next entry then synthesizes the sentence
whole (a failure midway, rare, lets the caller hear its start again in the new voice, never lose
its end), and the call keeps that entry for its later sentences: a turn is never spoken in two
voices going back and forth (a provider back in service is taken up by the node's next calls,
its breaker closing).
Every entry's audio comes at the first entry's rate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from voicedock.errors import ProviderError
from voicedock.pipeline.audio import PcmStream
from voicedock.pipeline.fallback_plans.plan import Plan
from voicedock.pipeline.providers.base import Tts, first_in_time


class TtsPlan(Plan[Tts]):
    kind = "tts"
    attempt_timeout_s = 3.0
    _from: int = 0  # the entry the call speaks with now (it moves on when one fails)

    @property
    def sample_rate(self) -> int:
        return self.primary.sample_rate

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        error: ProviderError | None = None
        try:
            for tried in self.tries(self._from):
                tts = tried.entry.provider
                try:
                    with self.serving(tried):
                        audio = tts.synthesize(text)
                        late = "the voice gave no audio in time"
                        stream = PcmStream(tts.sample_rate, self.sample_rate)
                        async for pcm in first_in_time(audio, self._attempt_timeout_s, late):
                            if converted := stream.convert(pcm):
                                yield converted
                        if tail := stream.end():
                            yield tail
                        return
                except ProviderError as exc:
                    error = exc
                    if tried.next is not None:
                        self._from = tried.index + 1
            assert error is not None  # the last entry is always tried
            raise error
        finally:
            del error  # a failure's traceback holds this frame: the frame must not hold it
