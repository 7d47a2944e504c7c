"""The aiohttp application: routes, middlewares, and the service lifecycle via cleanup_ctx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from voicedock.api import (
    calls_routes,
    campaign_routes,
    console_routes,
    events_routes,
    key_routes,
    listen_routes,
    metrics_routes,
    organization_routes,
    provider_key_routes,
    resource_routes,
    tool_template_routes,
    usage_routes,
    voice_routes,
    webhook_routes,
)
from voicedock.api.keys import MEDIA_PATH, SCOPED_PATHS, SERVICE
from voicedock.api.middleware import authenticate, errors
from voicedock.api.models.document import openapi_json
from voicedock.api.rate_limits import LIMITER, RateLimiter, rate_limit
from voicedock.api.resources import Resource, scoped_paths
from voicedock.config import Settings
from voicedock.service import Service

ServiceFactory = Callable[[], Awaitable[Service]]
RESOURCES: tuple[Resource[Any], ...] = (
    *calls_routes.RESOURCES,
    *campaign_routes.RESOURCES,
    *resource_routes.RESOURCES,
    *webhook_routes.RESOURCES,
    *key_routes.RESOURCES,
    *tool_template_routes.RESOURCES,
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
        middlewares=[errors, authenticate, rate_limit],
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
    app.add_routes(calls_routes.routes)
    app.add_routes(campaign_routes.routes)
    app.add_routes(resource_routes.routes)
    app.add_routes(webhook_routes.routes)
    app.add_routes(key_routes.routes)
    app.add_routes(organization_routes.routes)
    app.add_routes(metrics_routes.routes)
    if settings.console.enabled:
        app.add_routes(console_routes.routes)
    app.add_routes(tool_template_routes.routes)
    app.add_routes(provider_key_routes.routes)
    app.add_routes(voice_routes.routes)
    app.add_routes(usage_routes.routes)
    events_routes.setup(app, settings.limits)
    listen_routes.setup(app)
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
