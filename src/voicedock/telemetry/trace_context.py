"""W3C trace context (``traceparent``, ``tracestate``): a request's parent read from its
headers, and a span's context written as headers for a request voicedock sends (a webhook).

Only the API's types: nothing here needs the SDK, so reading headers costs nothing when
traces are off."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()


def parent_from(headers: Mapping[str, str]) -> Context | None:
    """The remote parent a request's ``traceparent`` names (None: none, or not a valid one)."""
    if "traceparent" not in headers and "Traceparent" not in headers:
        return None
    carrier = {name.lower(): value for name, value in headers.items()}
    context = _PROPAGATOR.extract(carrier)
    return context if context else None


def headers_of(span: SpanContext) -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) naming ``span`` as the parent (nothing for an
    invalid context)."""
    carrier: dict[str, str] = {}
    if span.is_valid:
        _PROPAGATOR.inject(carrier, set_span_in_context(NonRecordingSpan(span)))
    return carrier
