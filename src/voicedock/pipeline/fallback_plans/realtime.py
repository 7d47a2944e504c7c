"""A speech-to-speech session's fallback plan: the pipeline (STT, LLM, TTS) a call goes on with
when its session fails, on the node's breakers.

The session is one request to its endpoint (``Endpoint("realtime", provider, url, model)``)
lasting the call: it fails when it is refused, dropped, sends a server error or gives no answer
within ``attempt_timeout_s``; it succeeded when the call ends with it. A session whose breaker
is open is not opened at all: the call starts on the pipeline (``attempt`` None). Either move
is a ``Switch`` (engine ``realtime``, from the session to the pipeline's first LLM; its
``provider-switch`` event), counted on the session's endpoint like any plan's
(``plan.py``). The dialogue that carries it out is ``pipeline/dialogue/realtime_fallback.py``.

The pipeline's engines are the call's for the rest of it: its LLM the plan's entries (an
``LlmPlan`` when there are several), its STT and TTS plans of their own where their sections
give one. ``endpoints`` names them as built, so that the turns the pipeline serves, and the
messages it hears and speaks, name its providers (``serving.py``), not the session's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from voicedock.pipeline.fallback_plans.llm import LlmPlan
from voicedock.pipeline.fallback_plans.plan import (
    BREAKER_OPEN,
    Switch,
    failure_reason,
    report_switch,
)
from voicedock.pipeline.fallback_plans.serving import Endpoints
from voicedock.pipeline.pools.provider_health import Attempt, Endpoint, ProviderHealth
from voicedock.pipeline.providers.base import Llm, ProviderError, Stt, Tts


@dataclass(slots=True)
class RealtimePlan:
    kind: ClassVar[str] = "realtime"
    session: Endpoint  # the speech-to-speech session's
    stt: Stt
    llm: Llm | LlmPlan
    tts: Tts
    to: Endpoint  # the pipeline's first LLM
    health: ProviderHealth
    # The pipeline's engines as built (a plan: its first entry), which its turns name.
    endpoints: Endpoints = field(default_factory=Endpoints)
    on_switch: Callable[[Switch], None] | None = None
    # How long the session may take to answer the caller before it failed (seconds).
    attempt_timeout_s: float = 5.0

    def attempt(self) -> Attempt | None:
        """The session may be opened (settle the ``Attempt``), or None: its breaker is open,
        and the call starts on the pipeline (reported)."""
        attempt = self.health.attempt(self.session)
        if attempt is None:
            self._switch(BREAKER_OPEN)
        return attempt

    def failed(self, attempt: Attempt | None, exc: Exception) -> None:
        """The session failed with ``exc``: counted, and the move to the pipeline reported."""
        if attempt is not None:
            attempt.failed()
        error = exc if isinstance(exc, ProviderError) else None
        self._switch("timeout" if error is None else failure_reason(error))

    async def aclose(self) -> None:
        for provider in (self.stt, self.llm, self.tts):
            with contextlib.suppress(Exception):
                await provider.aclose()

    def _switch(self, reason: str) -> None:
        report_switch(Switch(self.kind, self.session, self.to, reason), self.health, self.on_switch)
