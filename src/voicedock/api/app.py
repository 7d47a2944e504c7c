"""The aiohttp application: routes, middlewares, and the service lifecycle via cleanup_ctx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from voicedock.api.app_keys import MEDIA_PATH, SCOPED_PATHS, SERVICE
from voicedock.api.authentication import authenticate
from voicedock.api.error_responses import errors
from voicedock.api.models.document import openapi_json
from voicedock.api.rate_limits import LIMITER, RateLimiter, rate_limit
from voicedock.api.request_traces import request_traces
from voicedock.api.resources import Mounted, scoped_paths
from voicedock.api.routes import (
    analysis_templates,
    api_keys,
    assistant_versions,
    assistants,
    audit_events,
    billing,
    call_events,
    caller_memory,
    calls,
    campaigns,
    console,
    do_not_call,
    domains,
    health,
    knowledge_bases,
    listen,
    metrics,
    organization,
    phone_numbers,
    provider_keys,
    squads,
    test_suites,
    tool_templates,
    trunks,
    usage,
    voices,
    webhooks,
)
from voicedock.config import Settings
from voicedock.service import Service

ServiceFactory = Callable[[], Awaitable[Service]]
RESOURCES: tuple[Mounted, ...] = (
    *calls.RESOURCES,
    *campaigns.RESOURCES,
    *do_not_call.RESOURCES,
    *assistants.RESOURCES,
    *phone_numbers.RESOURCES,
    *trunks.RESOURCES,
    *webhooks.RESOURCES,
    *api_keys.RESOURCES,
    *tool_templates.RESOURCES,
    *analysis_templates.RESOURCES,
    *test_suites.RESOURCES,
    *squads.RESOURCES,
    *domains.RESOURCES,
    *audit_events.RESOURCES,
    *knowledge_bases.RESOURCES,
)


def create_app(
    settings: Settings, service_factory: ServiceFactory | None = None
) -> web.Application:
    """The web app; the service is opened on start-up and closed on shutdown.

    ``service_factory`` defaults to ``Service.open(settings)``; tests pass one that builds the
    service around a test store and a fake PBX.
    """
    factory = service_factory or (lambda: Service.open(settings))
    # aiohttp's own limit backs up read_json's (a body that lies about its length).
    app = web.Application(
        middlewares=[*request_traces(settings), errors, authenticate, rate_limit],
        client_max_size=settings.server.max_body_bytes,
    )
    app[LIMITER] = RateLimiter(settings.rate_limits)
    app[SCOPED_PATHS] = scoped_paths(RESOURCES)

    async def service_ctx(app: web.Application) -> AsyncIterator[None]:
        service = await factory()
        app[SERVICE] = service
        try:
            yield
        finally:
            await service.aclose()

    app.cleanup_ctx.append(service_ctx)
    console_routes = (console,) if settings.console.enabled else ()
    for module in (
        calls,
        campaigns,
        do_not_call,
        assistants,
        assistant_versions,
        caller_memory,
        phone_numbers,
        trunks,
        health,
        webhooks,
        api_keys,
        organization,
        metrics,
        *console_routes,
        tool_templates,
        analysis_templates,
        provider_keys,
        voices,
        usage,
        test_suites,
        squads,
        domains,
        audit_events,
        billing,
        knowledge_bases,
    ):
        app.add_routes(module.routes)
    calls.setup(app)
    call_events.setup(app)
    listen.setup(app)
    app.router.add_get("/openapi.json", _openapi)
    app.router.add_get(MEDIA_PATH, _media)
    return app


async def _media(request: web.Request) -> web.StreamResponse:
    """Client media mode: Asterisk's websocket_client connects here for each call's audio.

    Not behind an API key (Asterisk has none); the acceptor takes only connections whose
    MEDIA_START names a call voicedock is waiting for and closes any other with 1008.
    """
    acceptor = request.app[SERVICE].media_acceptor
    if acceptor is None:
        raise web.HTTPNotFound(reason="client media mode is not enabled")
    return await acceptor.handle(request)


async def _openapi(request: web.Request) -> web.Response:
    return web.Response(body=openapi_json(), content_type="application/json")
