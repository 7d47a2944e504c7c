"""The webhook outbox in SQL (both backends): ``webhook_endpoints`` and ``webhook_outbox``.

``SqlOutboxWrites`` are the writes a ``Transaction`` offers (endpoints, ``enqueue``),
``SqlOutboxReads`` the endpoints a ``Store`` lists; ``SqlOutbox`` is the delivery worker's
``Outbox``, each call its own short transaction. Claims lease rows, and a leased row is a
delivery in flight on some node. Claims take turns (``ClaimLock``: on PostgreSQL a
transaction-scoped advisory lock every node's claim takes; SQLite's single writer serializes
them anyway), so each claim counts what the claims before it leased: no row is handed out
twice, and the ``DeliveryCaps`` per endpoint and per organization hold across nodes. What is
due is shared by ``domain.webhooks.claim_fairly``.

A claim names the node that made it (``claimed_by``). A lease held by a node that no longer
holds a live node lease (killed mid-request, or gone) is no delivery in flight: it neither
counts against the caps nor keeps its row from the next claim, so a dead node's deliveries go
out (again: at least once) as soon as its node lease runs out, not a webhook lease later, and
never hold back the endpoint's other events meanwhile.
"""

# Statements are assembled only from constant fragments; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Protocol

from voicedock.domain.records import utcnow
from voicedock.domain.webhooks import (
    Delivery,
    DeliveryCaps,
    Queued,
    WebhookEndpoint,
    claim_fairly,
)
from voicedock.store.sql.base import StorePart, TransactionPart
from voicedock.store.sql.conn import Conn, Row, marks
from voicedock.store.sql.locks import ClaimLock
from voicedock.store.sql.rows import Dialect, Table, integer, text

WEBHOOK_ENDPOINTS = Table("webhook_endpoints", WebhookEndpoint)

MAX_ERROR_LENGTH = 1000  # last_error is for operators; a huge response body is not kept

_PENDING = "o.delivered_at IS NULL AND o.gave_up_at IS NULL"
_DUE_ORDER = "o.next_attempt_at, o.created_at, o.id"
# Each endpoint's oldest due row that is not leased, oldest due first. The endpoints with
# pending rows are found by skipping along webhook_outbox_endpoint_due (pending rows by
# endpoint, in due order), so a claim looks at each endpoint's first rows, whatever its backlog
# or history.
_NEXT_PENDING_ENDPOINT = (
    f"(SELECT o.endpoint_id FROM webhook_outbox o WHERE {_PENDING}{{after}}"
    f" ORDER BY o.endpoint_id, {_DUE_ORDER} LIMIT 1)"
)
# A row leased right now by a node still alive (or by this claimer itself, or by a claim that
# named no node); parameters: now, the claimer, now.
_LEASED_BY_THE_LIVING = (
    "(o.lease_until IS NOT NULL AND o.lease_until > ? AND (o.claimed_by IS NULL"
    " OR o.claimed_by = ? OR o.claimed_by IN (SELECT n.id FROM nodes n WHERE n.lease_until > ?)))"
)
_HEADS = (
    "WITH RECURSIVE pending(endpoint_id) AS ("
    f" SELECT {_NEXT_PENDING_ENDPOINT.format(after='')}"
    f" UNION ALL SELECT {_NEXT_PENDING_ENDPOINT.format(after=' AND o.endpoint_id > p.endpoint_id')}"
    " FROM pending p WHERE p.endpoint_id IS NOT NULL),"
    " heads(id) AS MATERIALIZED (SELECT (SELECT o.id FROM webhook_outbox o"
    f" WHERE o.endpoint_id = p.endpoint_id AND {_PENDING} AND o.next_attempt_at <= ?"
    f" AND NOT {_LEASED_BY_THE_LIVING} ORDER BY {_DUE_ORDER} LIMIT 1)"
    " FROM pending p WHERE p.endpoint_id IS NOT NULL)"
    " SELECT o.id, o.endpoint_id, e.organization_id FROM heads h"
    " JOIN webhook_outbox o ON o.id = h.id JOIN webhook_endpoints e ON e.id = o.endpoint_id"
    f" WHERE e.enabled ORDER BY {_DUE_ORDER}"
)
_IN_FLIGHT = (
    "SELECT o.id, o.endpoint_id, e.organization_id FROM webhook_outbox o"
    " JOIN webhook_endpoints e ON e.id = o.endpoint_id"
    f" WHERE {_PENDING} AND {_LEASED_BY_THE_LIVING}"
)


def new_delivery_id() -> str:
    return f"dlv_{uuid.uuid4().hex}"


async def enqueue_delivery(
    conn: Conn,
    dialect: Dialect,
    now: datetime,
    endpoint_id: str,
    event_type: str,
    payload: bytes,
    msg_id: str,
) -> None:
    await conn.execute(
        "INSERT INTO webhook_outbox (id, endpoint_id, msg_id, event_type, payload, attempts,"
        " next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)"
        " ON CONFLICT (endpoint_id, msg_id) DO NOTHING",
        new_delivery_id(),
        endpoint_id,
        msg_id,
        event_type,
        payload.decode("utf-8"),  # JSON text; kept byte for byte
        dialect.dt(now),
        dialect.dt(now),
    )


class SqlOutboxWrites(TransactionPart):
    """Webhook writes inside an open transaction."""

    async def insert_webhook_endpoint(self, endpoint: WebhookEndpoint) -> None:
        await self._conn.execute(
            WEBHOOK_ENDPOINTS.insert_sql(),
            *WEBHOOK_ENDPOINTS.encode(endpoint, self._dialect, WEBHOOK_ENDPOINTS.insert_columns),
        )

    async def delete_webhook_endpoint(self, organization_id: str, endpoint_id: str) -> bool:
        return await self._delete(WEBHOOK_ENDPOINTS, organization_id, endpoint_id)

    async def list_webhook_endpoints(self, organization_id: str) -> list[WebhookEndpoint]:
        """The organization's endpoints, read on this transaction's own connection (the
        fan-out of an event needs no second pool connection while this one is held). On
        PostgreSQL the rows are share-locked, so an endpoint deleted concurrently cannot
        make the enqueue that follows (and with it the call's change) fail its foreign key."""
        share = " FOR SHARE" if self._dialect.name == "postgres" else ""
        rows = await self._conn.fetch(
            "SELECT * FROM webhook_endpoints WHERE organization_id = ? ORDER BY created_at, id"
            + share,
            organization_id,
        )
        return [WEBHOOK_ENDPOINTS.decode(r, self._dialect) for r in rows]

    async def enqueue(self, endpoint_id: str, event_type: str, payload: bytes, msg_id: str) -> None:
        """Add a delivery due now; the same (endpoint_id, msg_id) again is a no-op. An
        unknown endpoint is a ``StoreError`` (foreign key)."""
        await enqueue_delivery(
            self._conn, self._dialect, utcnow(), endpoint_id, event_type, payload, msg_id
        )


class SqlOutboxReads(StorePart):
    """Endpoint lookups."""

    async def list_webhook_endpoints(
        self, organization_id: str, assistant_id: str | None = None, event_type: str | None = None
    ) -> list[WebhookEndpoint]:
        endpoints = await self._of_organization(WEBHOOK_ENDPOINTS, organization_id)
        if event_type is None:
            return endpoints
        return [e for e in endpoints if e.wants(assistant_id, event_type)]


class WriteSession(Protocol):
    """A store's write session: a connection inside one transaction (``brief``: a few
    statements on rows found by key, which the embedded database may run on the event loop)."""

    def __call__(self, *, brief: bool = False) -> AbstractAsyncContextManager[Conn]: ...


class SqlOutbox:
    """``voicedock.webhooks.outbox.Outbox`` over a store's write sessions."""

    def __init__(
        self,
        session: WriteSession,
        dialect: Dialect,
        *,
        claim_lock: ClaimLock,
        claimer: str = "",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """``claimer``: the node whose worker claims (its id in ``nodes``); "" names none, and
        such claims always count as in flight until their lease runs out."""
        self._session = session
        self._dialect = dialect
        self._claim_lock = claim_lock
        self._claimer = claimer
        self._clock = clock

    async def enqueue(self, endpoint_id: str, event_type: str, payload: bytes, msg_id: str) -> None:
        async with self._session() as conn:
            await enqueue_delivery(
                conn, self._dialect, self._clock(), endpoint_id, event_type, payload, msg_id
            )

    async def claim_due(
        self, now: datetime, limit: int, lease: timedelta, *, caps: DeliveryCaps
    ) -> list[Delivery]:
        if limit <= 0:
            return []
        at = self._dialect.dt(now)
        async with self._session() as conn:
            await self._claim_lock.lock_webhook_claims(conn)

            living = (at, self._claimer, at)  # _LEASED_BY_THE_LIVING's parameters

            async def heads() -> list[Queued]:
                return [_queued(r) for r in await conn.fetch(_HEADS, at, *living)]

            async def take(chosen: Sequence[Queued]) -> None:
                await conn.execute(
                    "UPDATE webhook_outbox SET lease_until = ?, claimed_by = ?"
                    f" WHERE id IN ({marks(chosen)})",
                    self._dialect.dt(now + lease),
                    self._claimer or None,
                    *(q.id for q in chosen),
                )

            in_flight = [_queued(r) for r in await conn.fetch(_IN_FLIGHT, *living)]
            chosen = await claim_fairly(heads, take, in_flight, caps, limit)
            if not chosen:
                return []
            rows = await conn.fetch(
                "SELECT o.id, o.endpoint_id, e.url, e.secret, o.event_type, o.payload, o.msg_id,"
                " o.attempts, o.created_at FROM webhook_outbox o JOIN webhook_endpoints e"
                f" ON e.id = o.endpoint_id WHERE o.id IN ({marks(chosen)})",
                *(q.id for q in chosen),
            )
        by_id = {r["id"]: r for r in rows}
        return [self._delivery(by_id[q.id]) for q in chosen]

    def _delivery(self, row: Row) -> Delivery:
        enqueued_at = self._dialect.from_dt(row["created_at"])
        assert enqueued_at is not None  # NOT NULL column
        return Delivery(
            id=text(row["id"]),
            endpoint_id=text(row["endpoint_id"]),
            url=text(row["url"]),
            secret=text(row["secret"]),
            event_type=text(row["event_type"]),
            payload=str(row["payload"]).encode("utf-8"),
            msg_id=text(row["msg_id"]),
            attempts=integer(row["attempts"]),
            enqueued_at=enqueued_at,
        )

    async def mark_delivered(self, delivery_id: str) -> None:
        async with self._session(brief=True) as conn:
            await conn.execute(
                "UPDATE webhook_outbox SET delivered_at = ?, attempts = attempts + 1,"
                " lease_until = NULL WHERE id = ?",
                self._dialect.dt(self._clock()),
                delivery_id,
            )

    async def mark_failed(
        self, delivery_id: str, next_attempt_at: datetime | None, error: str
    ) -> None:
        """Record a failed attempt; ``next_attempt_at=None`` gives up (the row is kept)."""
        common = "attempts = attempts + 1, lease_until = NULL, last_error = ?"
        async with self._session(brief=True) as conn:
            if next_attempt_at is None:
                await conn.execute(
                    f"UPDATE webhook_outbox SET {common}, gave_up_at = ? WHERE id = ?",
                    error[:MAX_ERROR_LENGTH],
                    self._dialect.dt(self._clock()),
                    delivery_id,
                )
            else:
                await conn.execute(
                    f"UPDATE webhook_outbox SET {common}, next_attempt_at = ? WHERE id = ?",
                    error[:MAX_ERROR_LENGTH],
                    self._dialect.dt(next_attempt_at),
                    delivery_id,
                )

    async def disable_endpoint(self, endpoint_id: str) -> None:
        async with self._session(brief=True) as conn:
            await conn.execute(
                "UPDATE webhook_endpoints SET enabled = ? WHERE id = ?", False, endpoint_id
            )


def _queued(row: Row) -> Queued:
    return Queued(text(row["id"]), text(row["endpoint_id"]), text(row["organization_id"]))


__all__ = ["WEBHOOK_ENDPOINTS", "SqlOutbox", "SqlOutboxReads", "SqlOutboxWrites"]
