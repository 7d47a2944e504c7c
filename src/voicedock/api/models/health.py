"""The node's public routes: ``/health``, ``/metrics``, ``/openapi.json`` and the client-mode
media websocket."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, UnsetType

from voicedock.api.models.base import Reply
from voicedock.api.models.operations import Schema, operation, ref

UpDown = Literal["up", "down"]


class DatabaseHealth(Reply, kw_only=True):
    status: UpDown


class ServerHealth(Reply, kw_only=True):
    status: UpDown
    links: dict[str, UpDown]


class PbxHealth(Reply, kw_only=True):
    kind: Annotated[str, Meta(description="asterisk, freeswitch or none")]
    status: Literal["up", "down", "disabled"]
    links: Annotated[
        dict[str, UpDown],
        Meta(
            description="Each connection calls need: ari and (when originating through AMI) "
            "ami for Asterisk, esl for FreeSWITCH; none for kind none."
        ),
    ]
    servers: (
        Annotated[
            dict[str, ServerHealth],
            Meta(
                description="Several PBX servers ([[pbx.asterisk.servers]]): each one's status "
                "and links by name (links above are then named <server>.<link>). Calls can be "
                "placed while any server is up (200); status is ok only while every one is."
            ),
        ]
        | UnsetType
    ) = UNSET


class ProviderBreaker(Reply, kw_only=True):
    engine: Annotated[str, Meta(description="llm, stt, tts or realtime")]
    provider: str
    state: Annotated[
        Literal["closed", "open", "half-open"],
        Meta(
            description="open: the node's calls skip this endpoint (their fallback plan's next "
            "entry serves them) until its cool-down ends; half-open: one request probes it"
        ),
    ]
    endpoint: (
        Annotated[
            str,
            Meta(
                description="Which endpoint (provider/host[:port]/model: never a path or key); "
                "only to a request with the [metrics] bearer_token."
            ),
        ]
        | UnsetType
    ) = UNSET


HealthStatus = Literal["ok", "degraded", "unavailable", "draining"]


class WorkerHealth(Reply, kw_only=True):
    node: Annotated[str, Meta(description="The worker's node id (<[node] id>-w<k>).")]
    status: Annotated[
        Literal["ok", "degraded", "unavailable", "draining", "down"],
        Meta(
            description="Its own /health's status (on its own port); down: it did not answer "
            "(restarting after a crash, or exited after a drain)."
        ),
    ]
    can_place_calls: bool
    draining: bool


class Health(Reply, kw_only=True):
    status: Annotated[
        HealthStatus,
        Meta(
            description="ok (200): the database answers and every PBX link is up, or pbx.kind "
            "is none; degraded: the database answers but a PBX link is down — 200 while calls "
            "can still be placed (one of several servers down), 503 when they cannot; "
            "unavailable (503): the database does not answer; draining (503): this node is "
            "stopping (SIGTERM, voicedock nodes drain): it takes no new call and exits once its "
            "calls have ended. On the API port of a machine running several workers "
            "(voicedock serve --workers), the machine's: ok while every worker is, degraded "
            "(200) while some worker can place calls, draining while every worker answering "
            "drains."
        ),
    ]
    can_place_calls: bool
    draining: Annotated[
        bool,
        Meta(description="This node drains: it takes no new call (docs/nodes.md)."),
    ]
    database: DatabaseHealth
    pbx: PbxHealth
    providers: Annotated[
        list[ProviderBreaker],
        Meta(
            description="The node's speech provider breakers (docs/speech.md, fallback plans): "
            "those open or half-open; with the [metrics] bearer_token as 'Authorization: "
            "Bearer <token>', every endpoint the node's calls used, each named. A breaker "
            "never changes status: calls go on with their plans' next entries."
        ),
    ]
    workers: (
        Annotated[
            list[WorkerHealth],
            Meta(
                description="A machine running several workers (voicedock serve --workers), "
                "asked on its API port: each worker as its own /health answers (database, "
                "pbx and providers above are those of the worker that answered)."
            ),
        ]
        | UnsetType
    ) = UNSET


def _health_op() -> Schema:
    op = operation(
        "Service health: database and PBX links", ("200", Health), errors="", public=True
    )
    op["responses"]["503"] = {
        "description": "The service cannot place calls (the body names the component down), "
        "or the node drains",
        "content": {"application/json": {"schema": ref(Health)}},
    }
    return op


PATHS: dict[str, Schema] = {
    "/health": {"get": _health_op()},
    "/openapi.json": {"get": operation("This document", ("200", None), errors="", public=True)},
    # Client media mode only (else 404); the call's token in MEDIA_START is the credential.
    "/media": {
        "get": operation(
            "Call media websocket (client mode): Asterisk connects; a MEDIA_START without the "
            "call's token (VOICEDOCK_MEDIA_TOKEN, set over ARI), late or too large, is closed "
            "with 1008; 429 while too many connections have not shown a token yet",
            ("101", None),
            errors="404 429",
            public=True,
        )
    },
    "/metrics": {
        "get": operation(
            "Prometheus metrics (text exposition format). Authenticated with the [metrics] "
            "bearer_token of the configuration, not an API key; 404 when none is configured.",
            ("200", None),
            errors="401 404",
            public=True,
        )
    },
}
MODELS = (Health,)
