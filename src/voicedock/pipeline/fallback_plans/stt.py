"""An assistant's speech recognition with its fallback plan: a turn whose transcription failed
is transcribed by the next entry, from the same audio (the caller never repeats themself).

An entry fails a turn when it raises a provider error or gives no transcript within
``attempt_timeout_s``. A plan is an ``Stt`` that transcribes each turn once it is over (a plan
does not transcribe while the caller speaks, as the offline engine alone does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from voicedock.errors import ProviderError
from voicedock.pipeline.fallback_plans.plan import Entry, Plan, Switch
from voicedock.pipeline.provider_health import ProviderHealth
from voicedock.pipeline.providers.base import ProviderTimeoutError, Stt

ATTEMPT_TIMEOUT_S = 5.0


class SttPlan(Plan[Stt]):
    kind = "stt"

    def __init__(
        self,
        entries: Sequence[Entry[Stt]],
        health: ProviderHealth,
        on_switch: Callable[[Switch], None] | None = None,
        *,
        attempt_timeout_s: float = ATTEMPT_TIMEOUT_S,
    ) -> None:
        super().__init__(entries, health, on_switch)
        self._attempt_timeout_s = attempt_timeout_s

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        error: ProviderError | None = None
        for tried in self.tries():
            try:
                try:
                    async with asyncio.timeout(self._attempt_timeout_s):
                        text = await tried.entry.provider.transcribe(pcm, sample_rate)
                except TimeoutError as exc:
                    raise ProviderTimeoutError("no transcript in time") from exc
            except ProviderError as exc:
                self.failed(tried, exc)
                error = exc
                continue
            except BaseException:
                tried.attempt.abandoned()
                raise
            tried.attempt.succeeded()
            return text
        assert error is not None  # the last entry is always tried
        raise error
