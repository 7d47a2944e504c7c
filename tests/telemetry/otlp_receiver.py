"""A small OTLP/HTTP traces receiver on 127.0.0.1 (what a collector does with voicedock's
exports, decoded with the OTLP protobuf definitions): each exported span, flattened, and the
headers of each export request."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Self

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

Value = str | bool | int | float | list[object]


def _value(value: AnyValue) -> Value:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    found: Value = getattr(value, kind) if kind else ""
    return found


def _attributes(pairs: object) -> dict[str, Value]:
    return {kv.key: _value(kv.value) for kv in pairs if isinstance(kv, KeyValue)}  # type: ignore[attr-defined]


@dataclass
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Value]
    events: list[tuple[str, int, dict[str, Value]]]
    resource: dict[str, Value]

    def every_value(self) -> list[str]:
        """Every attribute's value, the span's, its events' and its resource's, as text."""
        values = [*self.attributes.values(), *self.resource.values()]
        values += [v for _, _, attributes in self.events for v in attributes.values()]
        return [str(v) for v in values]


@dataclass
class OtlpReceiver:
    spans: list[ReceivedSpan] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/v1/traces", self._export)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, name: str, timeout: float = 10.0) -> ReceivedSpan:
        """The first span called ``name`` received (waiting for it)."""
        async with asyncio.timeout(timeout):
            while True:
                found = [s for s in self.spans if s.name == name]
                if found:
                    return found[0]
                self._arrived.clear()
                await self._arrived.wait()

    async def _export(self, request: web.Request) -> web.Response:
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        ReceivedSpan(
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            name=span.name,
                            kind=span.kind,
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                            attributes=_attributes(span.attributes),
                            events=[
                                (e.name, e.time_unix_nano, _attributes(e.attributes))
                                for e in span.events
                            ],
                            resource=resource,
                        )
                    )
        self._arrived.set()
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")
