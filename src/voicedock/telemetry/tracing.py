"""The node's tracer: one OpenTelemetry ``TracerProvider`` exporting over OTLP, owned by the
service (made with it, flushed and shut down by its ``aclose``), or nothing at all.

    tracing = Tracing.of(settings.telemetry, node_id)   # traces = "off": tracer is None
    if tracing.tracer is not None:
        ...                                             # spans
    await tracing.aclose()                              # the last spans exported

The provider is the node's own, never the process-wide one (tests run several services in a
process); spans go to the exporter in batches from the SDK's thread, so a slow or absent
collector never holds a call (its spans are dropped once the queue is full). The SDK is
imported only when traces are on.

What an attribute may hold is decided here too: ``words`` and ``number`` give what is said and
a phone number only when the operator opted in (``record_content``), numbers masked as the logs
mask them; API keys and secrets never.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from opentelemetry.trace import Tracer
from opentelemetry.util.types import AttributeValue

from voicedock.aio import Closable
from voicedock.config.telemetry import TelemetrySettings
from voicedock.validation import mask_number

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

SCOPE = "voicedock"  # the instrumentation scope of every span


class Tracing(Closable):
    """The node's traces: ``tracer`` (None while off) and what attributes may hold."""

    def __init__(self, settings: TelemetrySettings, provider: TracerProvider | None) -> None:
        self.settings = settings
        self._provider = provider
        self.tracer: Tracer | None = None if provider is None else provider.get_tracer(SCOPE)
        self._closed = False

    @classmethod
    def of(
        cls, settings: TelemetrySettings, node_id: str, exporter: SpanExporter | None = None
    ) -> Tracing:
        """The tracer ``settings`` ask for (none while off) on node ``node_id``; ``exporter``
        (tests): export there, each span as it ends, whatever ``traces`` says."""
        if not settings.on and exporter is None:
            return cls(settings, None)
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        resource = Resource.create(
            {
                "service.name": settings.service_name,
                "service.instance.id": node_id,
                "service.version": _version(),
            }
        )
        sampler = ParentBased(TraceIdRatioBased(settings.sample_ratio))
        provider = TracerProvider(sampler=sampler, resource=resource, shutdown_on_exit=False)
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            timeout_ms = settings.timeout_seconds * 1000
            processor = BatchSpanProcessor(exporter_for(settings), export_timeout_millis=timeout_ms)
            provider.add_span_processor(processor)
        return cls(settings, provider)

    def words(self, text: str | None) -> str | None:
        """What was said, for an attribute: only when the operator records content."""
        return text if text and self.settings.record_content else None

    def number(self, number: str | None) -> str | None:
        """A phone number, for an attribute: masked, and only when the operator records
        content."""
        return mask_number(number) if number and self.settings.record_content else None

    async def aclose(self) -> None:
        """Export what is left and stop the exporter (idempotent; in a worker thread: the SDK
        waits for its export)."""
        if self._closed:
            return
        self._closed = True
        self.tracer = None
        if self._provider is not None:
            await asyncio.to_thread(self._provider.shutdown)


def present(pairs: Iterable[tuple[str, AttributeValue | None]]) -> dict[str, AttributeValue]:
    """The attributes of ``pairs`` that have a value (``None``: left out of the span)."""
    return {name: value for name, value in pairs if value is not None}


def exporter_for(settings: TelemetrySettings) -> SpanExporter:
    """The OTLP exporter ``settings.traces`` names, to ``settings.url()`` with its headers."""
    url = settings.url()
    headers = dict(settings.headers)
    timeout = float(settings.timeout_seconds)
    if settings.traces == "otlp-grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        insecure = urlsplit(url).scheme == "http"
        return GrpcExporter(endpoint=url, insecure=insecure, headers=headers, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter(endpoint=url, headers=headers, timeout=timeout)


def _version() -> str:
    try:
        return importlib.metadata.version("voicedock")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
