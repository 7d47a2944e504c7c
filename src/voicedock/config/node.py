"""This process: where its API listens, its database, its name among the nodes sharing that
database, and the two pages it serves beside the API (``/metrics``, ``/console``)."""

from __future__ import annotations

import re
import socket
from typing import Annotated, Literal

from msgspec import Meta

from voicedock.config.table_types import NAME_MAX, Port, Table, matching, within
from voicedock.validation import TOKEN_PATTERN

WORKERS_MAX = 256  # worker processes of one `voicedock serve`
GC_THRESHOLDS = (2000, 10, 100)  # server.gc_thresholds' default
GC_FULL_EVERY_SECONDS = 600  # server.gc_full_every_seconds' default


class ServerSettings(Table):
    host: str = "127.0.0.1"
    port: Port = 8080
    max_body_bytes: Annotated[
        int, within(1024, 16 * 1024 * 1024, "must be between 1 KiB and 16 MiB")
    ] = 64 * 1024
    # The event loop `voicedock serve` runs on: "uvloop" carries more media sessions per core
    # (docs/performance/media.md).
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"
    # Python's cyclic garbage collector, as `gc.set_threshold` takes them: a young collection
    # once this many more container objects live than at the last one, a middle one every so
    # many young ones, a full one every so many middle ones (and only when the objects that
    # reached the oldest generation since the last full one are over a quarter of those it
    # kept). What start-up loaded is frozen out of its reach. Python's own: [700, 10, 10]
    # (docs/performance/sizing.md, "Garbage collection").
    gc_thresholds: tuple[
        Annotated[int, Meta(ge=100, le=1_000_000)],
        Annotated[int, Meta(ge=1, le=1000)],
        Annotated[int, Meta(ge=1, le=1000)],
    ] = GC_THRESHOLDS
    # A full collection at least this often (seconds; 0: only when the thresholds call for
    # one). The thresholds count what lives, not what waits: without it the garbage an ended
    # call leaves in reference cycles waits for a full collection that may not come for hours
    # (voicedock/collector.py; docs/performance/sizing.md, "Garbage collection").
    gc_full_every_seconds: Annotated[
        int, within(0, 86_400, "must be between 0 (off) and 86400 s")
    ] = GC_FULL_EVERY_SECONDS


class DatabaseSettings(Table):
    # sqlite:///relative/or/absolute/path.db  or  postgresql://user:pass@host:port/db
    url: Annotated[
        str,
        matching(
            r"(sqlite:///|postgresql://|postgres://)[\s\S]*",
            "must start with sqlite:/// or postgresql://",
        ),
    ] = "sqlite:///var/voicedock.db"


def default_node_id() -> str:
    """This host's name, reduced to what a node id may hold."""
    name = re.sub(r"[^A-Za-z0-9_.\-]+", "-", socket.gethostname()).strip("-.")
    return name[:NAME_MAX] or "voicedock"


class NodeSettings(Table):
    """[node]: this process among several sharing one database (docs/nodes.md)."""

    # Names the node in the database (calls' owner, its lease); empty: this host's name, so
    # that a restarted process finds its own calls again. Two nodes never share one id.
    id: Annotated[
        str,
        matching(f"|{TOKEN_PATTERN}", "1-64 letters, digits, '_', '.', '-'", max_length=NAME_MAX),
    ] = ""
    # A node that has not renewed its lease for this long is dead: another node ends its calls.
    lease_seconds: Annotated[int, Meta(ge=3, le=300)] = 10
    # A draining node (SIGTERM, `voicedock nodes drain`) takes no new call and lets its calls
    # finish for at most this long; then it stops as a second SIGTERM would, hanging up what is
    # left (end_reason "shutdown"). 0: SIGTERM stops at once (docs/nodes.md).
    drain_timeout_seconds: Annotated[int, Meta(ge=0, le=86_400)] = 600
    # The node processes `voicedock serve` runs on this machine, each a node of its own
    # (`<id>-w<k>`; `--workers N` overrides it). 0: one per core with cloud speech on
    # PostgreSQL, else one (docs/nodes.md, "Workers: every core of a machine").
    workers: Annotated[int, Meta(ge=0, le=WORKERS_MAX)] = 0

    def __post_init__(self) -> None:
        if not self.id:
            self.id = default_node_id()


class MetricsSettings(Table):
    """[metrics]: GET /metrics for Prometheus (docs/observability.md)."""

    # What Prometheus sends as "Authorization: Bearer <token>" (its `authorization`
    # setting); empty: /metrics is off (404). At least 16 characters.
    bearer_token: Annotated[
        str,
        matching(
            r"|[A-Za-z0-9_\-.~+/]{16,200}=*",
            "must be 16-200 characters of A-Z a-z 0-9 _ - . ~ + / =",
        ),
    ] = ""


class ConsoleSettings(Table):
    """[console]: the web console at /console (docs/console.md)."""

    enabled: bool = True
    # A console sign-in lasts this long (the key's revocation ends it).
    session_hours: Annotated[int, within(1, 24 * 30, "must be between 1 and 720")] = 12
    # The session cookie is "__Host-" prefixed and sent by browsers only over https (and to
    # http://localhost); false: a console reached over plain http on another host (a lab).
    secure_cookie: bool = True
