"""Webhook endpoints and the outbox: where an organization's events go, and the delivery rows
written with the state change that caused them.

The store's ``Transaction`` is an :class:`OutboxWriter` (the call engine enqueues an event in
the same transaction as the call update); the store's ``outbox()`` is the :class:`Outbox` the
delivery worker (``voicedock.webhooks.worker``) claims from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from voicedock.domain.records import utcnow


@dataclass(slots=True)
class WebhookEndpoint:
    """Where an organization's events are delivered. ``assistant_id=None`` receives the
    events of every assistant; empty ``event_types`` subscribes to every type."""

    id: str
    organization_id: str
    url: str
    secret: str
    assistant_id: str | None = None
    event_types: list[str] = field(default_factory=list)
    enabled: bool = True
    created_at: datetime = field(default_factory=utcnow)

    def wants(self, assistant_id: str | None, event_type: str) -> bool:
        return (
            self.enabled
            and (self.assistant_id is None or self.assistant_id == assistant_id)
            and (not self.event_types or event_type in self.event_types)
        )


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one endpoint, as claimed by the worker (endpoint URL/secret joined in)."""

    id: str
    endpoint_id: str
    url: str
    secret: str
    event_type: str
    payload: bytes  # the exact JSON body; signed and sent as-is on every attempt
    msg_id: str  # the ``webhook-id``: identical across retries
    attempts: int  # attempts already made before this claim
    enqueued_at: datetime
    previous_secrets: tuple[str, ...] = ()  # still signed with during a secret rotation


class OutboxWriter(Protocol):
    """What the call engine needs: add a delivery inside the current transaction."""

    async def enqueue(self, endpoint_id: str, event_type: str, payload: bytes, msg_id: str) -> None:
        """Add a pending delivery due now. Enqueuing the same (endpoint_id, msg_id) again
        is a no-op, so a replayed state change does not send an event twice."""
        ...


class Outbox(OutboxWriter, Protocol):
    """What the delivery worker needs."""

    async def claim_due(self, now: datetime, limit: int, lease: timedelta) -> list[Delivery]:
        """Up to ``limit`` pending deliveries due at ``now`` for enabled endpoints, oldest due
        first, each leased until ``now + lease``."""
        ...

    async def mark_delivered(self, delivery_id: str) -> None: ...

    async def mark_failed(
        self, delivery_id: str, next_attempt_at: datetime | None, error: str
    ) -> None:
        """Record a failed attempt; ``next_attempt_at=None`` means give up (dead)."""
        ...

    async def disable_endpoint(self, endpoint_id: str) -> None:
        """Stop delivering to an endpoint (it answered 410 Gone)."""
        ...
