"""A turn's spans, from its latency record (``TurnTimed``): made once the turn is answered,
with the times the record measured, under the call's span.

    turn                 the caller's speech ended (VAD) → the reply's first audio sent
    ├── endpointing      the speech's end → the decision that the caller was done
    ├── stt              the decision → the final words (voicedock.stt.*)
    ├── retrieval        the knowledge bases searched with the words (when they were)
    ├── chat <model>     the words → the model's first token (GenAI: gen_ai.*)
    └── tts              the first token → the first synthesized audio

Every time comes from the record the call keeps (``TurnLatency``: milliseconds from the
decision), so the spans and ``GET /calls/{id}``'s ``latency`` agree. The LLM's span ends at
its first token (the time to first token): the rest of its reply streams while it is spoken.
Attributes name providers, models and hosts, never a key or a URL's path; the caller's words
only when the operator records content (``telemetry/tracing.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Tracer, set_span_in_context
from opentelemetry.util.types import AttributeValue

from voicedock.telemetry.tracing import Tracing, present

if TYPE_CHECKING:  # the audio pipeline is imported when the first call is answered
    from voicedock.pipeline.dialogue.events import TurnTimed
    from voicedock.pipeline.pools.provider_health import Endpoint

Attributes = Mapping[str, AttributeValue]


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


class TurnSpans:
    """One call's turn spans: ``add`` each answered turn under ``parent`` (the call's)."""

    def __init__(self, tracing: Tracing, tracer: Tracer, parent: Context) -> None:
        self._tracing, self._tracer, self._parent = tracing, tracer, parent
        self.count = 0  # turns traced so far

    def add(self, timed: TurnTimed) -> None:
        latency, decided = timed.latency, timed.decided_at

        def at(ms: float | None) -> float | None:
            return None if ms is None else decided + ms / 1000

        heard = at(latency.stt_final_ms)
        retrieved = None
        if heard is not None and latency.retrieval_ms is not None:
            retrieved = heard + latency.retrieval_ms / 1000
        first_token, first_audio = at(latency.llm_first_token_ms), at(latency.tts_first_audio_ms)
        sent = at(latency.first_frame_sent_ms)
        begin = decided - latency.endpointing_ms / 1000
        marks = [t for t in (decided, heard, retrieved, first_token, first_audio, sent) if t]
        self.count += 1
        attributes: dict[str, AttributeValue] = {
            "voicedock.turn.index": self.count,
            "voicedock.turn.endpointing_ms": latency.endpointing_ms,
            "voicedock.turn.early_cut_offs": latency.early_cut_offs,
        }
        attributes |= present(
            (
                ("voicedock.turn.stt_final_ms", latency.stt_final_ms),
                ("voicedock.turn.llm_first_token_ms", latency.llm_first_token_ms),
                ("voicedock.turn.tts_first_audio_ms", latency.tts_first_audio_ms),
                ("voicedock.turn.first_frame_sent_ms", latency.first_frame_sent_ms),
            )
        )
        if (words := self._tracing.words(timed.heard)) is not None:
            attributes["voicedock.turn.heard"] = words
        turn = self._span("turn", self._parent, begin, attributes)
        inside = set_span_in_context(turn, self._parent)
        self._child("endpointing", inside, begin, decided, {})
        if heard is not None:
            self._child("stt", inside, decided, heard, _engine("stt", timed.stt))
        if heard is not None and retrieved is not None:
            self._child("retrieval", inside, heard, retrieved, {})
        if first_token is not None:
            start = retrieved or heard or decided
            model = timed.llm.model if timed.llm is not None and timed.llm.model else ""
            name = f"chat {model}" if model else "chat"
            self._child(name, inside, start, max(start, first_token), _chat(timed.llm))
        if first_audio is not None:
            start = first_token or heard or decided
            self._child("tts", inside, start, max(start, first_audio), _engine("tts", timed.tts))
        if sent is not None:
            turn.add_event("first_audio_sent", timestamp=_ns(sent))
        if latency.filler_ms is not None and (filler := at(latency.filler_ms)) is not None:
            turn.add_event("filler_said", timestamp=_ns(filler))
        turn.end(end_time=_ns(max(marks, default=decided)))

    def _span(self, name: str, parent: Context, start: float, attributes: Attributes) -> Span:
        return self._tracer.start_span(
            name,
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            start_time=_ns(start),
        )

    def _child(
        self, name: str, parent: Context, start: float, end: float, attributes: Attributes
    ) -> None:
        kind = SpanKind.CLIENT if attributes else SpanKind.INTERNAL
        span = self._tracer.start_span(
            name, context=parent, kind=kind, attributes=attributes, start_time=_ns(start)
        )
        span.end(end_time=_ns(end))


def _engine(kind: str, endpoint: Endpoint | None) -> dict[str, AttributeValue]:
    """An STT's or TTS's provider, model and host (never the URL's path or a key)."""
    if endpoint is None:
        return {}
    found: dict[str, AttributeValue] = {f"voicedock.{kind}.provider": endpoint.provider}
    if endpoint.model:
        found[f"voicedock.{kind}.model"] = endpoint.model
    found.update(_server(endpoint))
    return found


def _chat(endpoint: Endpoint | None) -> dict[str, AttributeValue]:
    """The GenAI semantic conventions' attributes of a chat request to ``endpoint``."""
    found: dict[str, AttributeValue] = {"gen_ai.operation.name": "chat"}
    if endpoint is not None:
        found["gen_ai.provider.name"] = endpoint.provider
        found["gen_ai.system"] = endpoint.provider  # the conventions' older name, still read
        if endpoint.model:
            found["gen_ai.request.model"] = endpoint.model
        found.update(_server(endpoint))
    return found


def _server(endpoint: Endpoint) -> dict[str, AttributeValue]:
    if not endpoint.base_url:
        return {}
    parts = urlsplit(endpoint.base_url)
    found: dict[str, AttributeValue] = {}
    if parts.hostname:
        found["server.address"] = parts.hostname
    if parts.port is not None:
        found["server.port"] = parts.port
    return found
