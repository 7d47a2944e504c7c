"""``GET /metrics``: the service's Prometheus metrics, behind their own bearer token.

Not an API key: the metrics describe the whole node (every organization's calls), so they are
read with ``[metrics] bearer_token`` (Prometheus's ``authorization`` setting). Without one
configured the route answers 404, so the metrics are never public by accident.
"""

from __future__ import annotations

from aiohttp import web

from voicedock.api.app_keys import METRICS_PATH, SERVICE
from voicedock.api.authentication import sends_metrics_token
from voicedock.errors import NotFound, Unauthorized
from voicedock.metrics import CONTENT_TYPE

routes = web.RouteTableDef()


@routes.get(METRICS_PATH)
async def metrics(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    if not service.settings.metrics.bearer_token:
        raise NotFound("metrics are off: set [metrics] bearer_token to serve them")
    if not sends_metrics_token(request):
        raise Unauthorized(
            "send the [metrics] bearer_token as 'Authorization: Bearer <token>'",
            error="Invalid metrics token",
        )
    body = await service.metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
