"""The webhook outbox in memory: the ``Outbox`` the worker's and the fake store's tests use
(the service's outbox is the store's, ``store/sql/outbox.py``)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from voicedock.domain.webhooks import Delivery, DeliveryCaps, Queued, claim_fairly


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@dataclass(slots=True)
class DeliveryRecord:
    """A row of the in-memory outbox (what the SQL table would hold)."""

    id: str
    endpoint_id: str
    event_type: str
    payload: bytes
    msg_id: str
    enqueued_at: datetime
    next_attempt_at: datetime
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    leased_until: datetime | None = None
    last_error: str | None = None


@dataclass(slots=True)
class EndpointRecord:
    id: str
    url: str
    secret: str
    enabled: bool = True
    organization_id: str = ""


@dataclass
class InMemoryOutbox:
    """A process-local :class:`Outbox`."""

    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    endpoints: dict[str, EndpointRecord] = field(default_factory=dict)
    records: dict[str, DeliveryRecord] = field(default_factory=dict)

    def add_endpoint(
        self, endpoint_id: str, url: str, secret: str, organization_id: str = ""
    ) -> None:
        self.endpoints[endpoint_id] = EndpointRecord(
            endpoint_id, url, secret, organization_id=organization_id
        )

    async def enqueue(self, endpoint_id: str, event_type: str, payload: bytes, msg_id: str) -> None:
        if endpoint_id not in self.endpoints:
            raise KeyError(f"unknown webhook endpoint {endpoint_id}")
        if any(r.endpoint_id == endpoint_id and r.msg_id == msg_id for r in self.records.values()):
            return
        now = self.clock()
        delivery_id = f"dlv_{len(self.records) + 1}"
        self.records[delivery_id] = DeliveryRecord(
            delivery_id, endpoint_id, event_type, payload, msg_id, now, next_attempt_at=now
        )

    async def claim_due(
        self, now: datetime, limit: int, lease: timedelta, *, caps: DeliveryCaps
    ) -> list[Delivery]:
        pending = [r for r in self.records.values() if r.state is DeliveryState.PENDING]
        pending.sort(key=lambda record: record.next_attempt_at)
        in_flight = [r for r in pending if r.leased_until is not None and r.leased_until > now]

        async def heads() -> list[Queued]:
            first: dict[str, Queued] = {}
            for record in pending:
                if (
                    self.endpoints[record.endpoint_id].enabled
                    and record.next_attempt_at <= now
                    and (record.leased_until is None or record.leased_until <= now)
                ):
                    first.setdefault(record.endpoint_id, self._queued(record))
            return list(first.values())

        async def take(chosen: Sequence[Queued]) -> None:
            for queued in chosen:
                self.records[queued.id].leased_until = now + lease

        in_flight_queued = [self._queued(r) for r in in_flight]
        chosen = await claim_fairly(heads, take, in_flight_queued, caps, limit)
        claimed = []
        for queued in chosen:
            record = self.records[queued.id]
            endpoint = self.endpoints[record.endpoint_id]
            claimed.append(
                Delivery(
                    id=record.id,
                    endpoint_id=record.endpoint_id,
                    url=endpoint.url,
                    secret=endpoint.secret,
                    event_type=record.event_type,
                    payload=record.payload,
                    msg_id=record.msg_id,
                    attempts=record.attempts,
                    enqueued_at=record.enqueued_at,
                )
            )
        return claimed

    def _queued(self, record: DeliveryRecord) -> Queued:
        organization_id = self.endpoints[record.endpoint_id].organization_id
        return Queued(record.id, record.endpoint_id, organization_id)

    async def mark_delivered(self, delivery_id: str) -> None:
        record = self.records[delivery_id]
        record.attempts += 1
        record.state = DeliveryState.DELIVERED
        record.leased_until = None

    async def mark_failed(
        self, delivery_id: str, next_attempt_at: datetime | None, error: str
    ) -> None:
        record = self.records[delivery_id]
        record.attempts += 1
        record.last_error = error
        record.leased_until = None
        if next_attempt_at is None:
            record.state = DeliveryState.DEAD
        else:
            record.next_attempt_at = next_attempt_at

    async def disable_endpoint(self, endpoint_id: str) -> None:
        self.endpoints[endpoint_id] = replace(self.endpoints[endpoint_id], enabled=False)

    def by_state(self, state: DeliveryState) -> list[DeliveryRecord]:
        return [record for record in self.records.values() if record.state is state]
