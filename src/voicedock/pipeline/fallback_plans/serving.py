"""Which provider serves each engine of a call now: a plan's entry that served last, or the
engine's one provider. Each turn's latency record names them (``TurnLatency``), and each
message of the transcript the provider that transcribed or spoke it, so that the call's usage
counts each provider's own seconds and characters (``domain/usage.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from voicedock.pipeline.fallback_plans.plan import Plan
from voicedock.pipeline.provider_health import Endpoint


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The endpoint of each engine of a call as it was built (a plan: its first entry's;
    None: not known, as for a dialogue built without them)."""

    stt: Endpoint | None = None
    llm: Endpoint | None = None
    tts: Endpoint | None = None


def serving(engine: object, built: Endpoint | None) -> Endpoint | None:
    """The endpoint serving ``engine`` now: a plan's entry that served last, else ``built``."""
    return engine.served if isinstance(engine, Plan) else built


def label(endpoint: Endpoint | None) -> str | None:
    return None if endpoint is None else endpoint.label()
