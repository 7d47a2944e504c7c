"""The span of a request that places a call (``[telemetry]`` on): ``POST /calls/outbound``
is a server span, a child of the client's W3C ``traceparent`` when it sends one, and current
while the request runs, so the call it creates is traced under it (``calls/call_traces.py``):
the client's trace goes on through the call, its turns and its webhooks.

Other requests are not traced (polling clients and scrapers would drown the calls). While
traces are off the middleware is not installed.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from opentelemetry.trace import SpanKind, Status, StatusCode

from voicedock.api.app_keys import SERVICE
from voicedock.config import Settings
from voicedock.telemetry.trace_context import parent_from

TRACED = frozenset({("POST", "/calls/outbound")})  # (method, path) of the traced requests


def request_traces(settings: Settings) -> list[Middleware]:
    """The middleware (outermost) while traces are on; none while they are off."""
    return [trace_request] if settings.telemetry.on else []


@web.middleware
async def trace_request(request: web.Request, handler: Handler) -> web.StreamResponse:
    service = request.app.get(SERVICE)
    tracer = None if service is None else service.tracing.tracer
    if tracer is None or (request.method, request.path) not in TRACED:
        return await handler(request)
    attributes = {
        "http.request.method": request.method,
        "http.route": request.path,
        "url.scheme": request.scheme,
    }
    with tracer.start_as_current_span(
        f"{request.method} {request.path}",
        context=parent_from(request.headers),
        kind=SpanKind.SERVER,
        attributes=attributes,
    ) as span:
        response = await handler(request)  # the errors middleware answers every failure
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        return response
