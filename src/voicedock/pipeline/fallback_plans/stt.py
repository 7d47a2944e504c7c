"""An assistant's speech recognition with its fallback plan: a turn whose transcription failed
is transcribed by the next entry, from the same audio (the caller never repeats themself).

An entry fails a turn when it raises a provider error or gives no transcript within
``attempt_timeout_s`` (5 s unless the plan says). A plan is an ``Stt`` that transcribes each
turn once it is over (it does not transcribe while the caller speaks, as the offline engine
alone does).
"""

from __future__ import annotations

import asyncio

from voicedock.errors import ProviderError
from voicedock.pipeline.fallback_plans.plan import Plan
from voicedock.pipeline.providers.base import ProviderTimeoutError, Stt


class SttPlan(Plan[Stt]):
    kind = "stt"

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        error: ProviderError | None = None
        try:
            for tried in self.tries():
                try:
                    with self.serving(tried):
                        try:
                            async with asyncio.timeout(self._attempt_timeout_s):
                                return await tried.entry.provider.transcribe(pcm, sample_rate)
                        except TimeoutError as exc:
                            raise ProviderTimeoutError("no transcript in time") from exc
                except ProviderError as exc:
                    error = exc
            assert error is not None  # the last entry is always tried
            raise error
        finally:
            del error  # a failure's traceback holds this frame: the frame must not hold it
