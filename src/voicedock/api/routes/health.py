"""``GET /health``: whether this node can place calls (public)."""

from __future__ import annotations

import asyncio
import logging

import msgspec
from aiohttp import web

from voicedock.api.app_keys import SERVICE
from voicedock.api.authentication import sends_metrics_token
from voicedock.api.machine import MACHINE
from voicedock.api.models.base import reply
from voicedock.api.models.health import (
    DatabaseHealth,
    Health,
    HealthStatus,
    PbxHealth,
    ProviderBreaker,
    UpDown,
    WorkerHealth,
)
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
    with the ``[metrics]`` bearer token, sees which provider endpoint a breaker is for).

    A worker of ``voicedock serve --workers N`` answers for itself on its own port, and for
    the machine on the API port the workers share (``workers``: each worker's own answer)."""
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
    status: HealthStatus
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
    body = Health(
        status=status,
        can_place_calls=can_place_calls,
        draining=draining,
        database=DatabaseHealth(status=_up(database_up)),
        pbx=msgspec.convert(pbx_body, PbxHealth),
        providers=msgspec.convert(_breakers(request), list[ProviderBreaker]),
    )
    machine = request.app.get(MACHINE)
    if machine is not None and machine.on_shared_port(request):
        body = machine_health(body, machine.place.node_id, await machine.health())
    serving = body.status == "ok" or (body.status == "degraded" and body.can_place_calls)
    return reply(body, status=200 if serving else 503)


def machine_health(own: Health, node: str, others: list[WorkerHealth]) -> Health:
    """``own`` (this worker's health) as the machine's, with every worker's: ok while each
    is; draining while each that answers drains; degraded while some worker can place calls
    (200) or none can (503); unavailable when this one's database does not answer."""
    this = WorkerHealth(
        node=node, status=own.status, can_place_calls=own.can_place_calls, draining=own.draining
    )
    workers = sorted([this, *others], key=lambda w: (len(w.node), w.node))
    answering = [w for w in workers if w.status != "down"]
    draining = all(w.draining for w in answering)
    can_place_calls = any(w.can_place_calls for w in workers)
    status: HealthStatus
    if draining:
        status = "draining"
    elif all(w.status == "ok" for w in workers):
        status = "ok"
    elif own.status == "unavailable" and not can_place_calls:
        status = "unavailable"
    else:
        status = "degraded"
    return msgspec.structs.replace(
        own, status=status, can_place_calls=can_place_calls, draining=draining, workers=workers
    )


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


def _up(up: bool) -> UpDown:
    return "up" if up else "down"
