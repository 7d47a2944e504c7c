"""Which provider serves each engine of a call now: a plan's entry that served last, or the
engine's one provider. Each turn's latency record names them (``TurnLatency``), and each
message of the transcript the provider that transcribed or spoke it, so that the call's usage
counts each provider's own seconds and characters (``domain/usage.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from voicedock.pipeline.fallback_plans.plan import Plan
from voicedock.pipeline.pools.provider_health import Endpoint

Engine = Literal["stt", "llm", "tts"]
# Who a message of the transcript is served by: the caller's words by the STT, the
# assistant's by the TTS.
_ENGINE_OF_ROLE: dict[str, Engine] = {"user": "stt", "assistant": "tts"}


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The endpoint of each engine of a call as it was built (a plan: its first entry's;
    None: not known, as for a dialogue built without them)."""

    stt: Endpoint | None = None
    llm: Endpoint | None = None
    tts: Endpoint | None = None


class Serving:
    """A call's engines as given (each a provider or a plan) and who serves each now."""

    def __init__(self, stt: object, llm: object, tts: object, built: Endpoints) -> None:
        """``built``: each engine's endpoint as it was built."""
        self._engines: dict[Engine, tuple[object, Endpoint | None]] = {
            "stt": (stt, built.stt),
            "llm": (llm, built.llm),
            "tts": (tts, built.tts),
        }

    def endpoint(self, engine: Engine) -> Endpoint | None:
        """The endpoint serving ``engine`` now: a plan's entry that served last, else the one
        it was built with."""
        given, built = self._engines[engine]
        return given.served if isinstance(given, Plan) else built

    def label(self, engine: Engine) -> str | None:
        endpoint = self.endpoint(engine)
        return None if endpoint is None else endpoint.label()

    def provider_of(self, role: str) -> str | None:
        """The provider serving a message of ``role`` now (``_ENGINE_OF_ROLE``)."""
        engine = _ENGINE_OF_ROLE.get(role)
        endpoint = None if engine is None else self.endpoint(engine)
        return None if endpoint is None else endpoint.provider
