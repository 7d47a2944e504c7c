"""``GET /health``: whether this node can place calls (public)."""

from __future__ import annotations

import asyncio
import logging

import msgspec
from aiohttp import web

from voicedock.api.app_keys import SERVICE
from voicedock.api.authentication import sends_metrics_token
from voicedock.api.models.base import reply
from voicedock.api.models.health import Health
from voicedock.errors import StoreError
from voicedock.logs import describe

routes = web.RouteTableDef()
log = logging.getLogger("voicedock.api")


HEALTH_DATABASE_TIMEOUT = 2.0  # seconds; a database slower than this counts as down


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    """``200`` when the service can place calls, even with one of several PBX servers down
    (``pbx.kind = "none"``: when the database answers); ``503`` otherwise, or while the node
    drains, so that a load balancer takes a node that cannot place calls, or is stopping, out.
    Public: names components and link kinds, never hosts or keys (the operator's monitoring,
    with the ``[metrics]`` bearer token, sees which provider endpoint a breaker is for)."""
    service = request.app[SERVICE]
    try:
        async with asyncio.timeout(HEALTH_DATABASE_TIMEOUT):
            await service.store.list_trunks()  # the database answers
        database_up = True
    except (StoreError, OSError, TimeoutError) as exc:
        log.warning("health: database not answering: %s", describe(exc))
        database_up = False
    pbx = service.pbx.health()
    disabled = pbx.kind == "none"
    draining = service.drain.draining
    if not database_up:
        status = "unavailable"
    elif draining:
        status = "draining"
    elif disabled or pbx.all_up:
        status = "ok"
    else:
        status = "degraded"
    pbx_body: dict[str, object] = {
        "kind": pbx.kind,
        "status": "disabled" if disabled else _up(pbx.can_place_calls),
        "links": {name: _up(up) for name, up in sorted(pbx.links.items())},
    }
    if pbx.servers:  # several servers: each one's own, by name
        pbx_body["servers"] = {
            name: {
                "status": _up(server.can_place_calls),
                "links": {link: _up(up) for link, up in sorted(server.links.items())},
            }
            for name, server in sorted(pbx.servers.items())
        }
    can_place_calls = database_up and pbx.can_place_calls and not draining
    body = {
        "status": status,
        "can_place_calls": can_place_calls,
        "draining": draining,
        "database": {"status": _up(database_up)},
        "pbx": pbx_body,
        "providers": _breakers(request),
    }
    serving = status == "ok" or (status == "degraded" and can_place_calls)
    return reply(msgspec.convert(body, Health), status=200 if serving else 503)


def _breakers(request: web.Request) -> list[dict[str, str]]:
    """The node's provider breakers: to anyone, those not closed, by engine and provider;
    to the operator's monitoring (the ``[metrics]`` bearer token), every one with its
    endpoint's label (host and model: an organization's own server may be among them)."""
    service = request.app[SERVICE]
    operator = sends_metrics_token(request)
    out = []
    for endpoint, state in service.speech.provider_health.breakers():
        if not operator and state == "closed":
            continue
        breaker = {"engine": endpoint.kind, "provider": endpoint.provider, "state": str(state)}
        if operator:
            breaker["endpoint"] = endpoint.label()
        out.append(breaker)
    return sorted(out, key=lambda b: (b["engine"], b["provider"], b.get("endpoint", "")))


def _up(up: bool) -> str:
    return "up" if up else "down"
