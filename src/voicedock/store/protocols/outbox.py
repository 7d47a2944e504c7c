"""The webhook outbox: the organizations' endpoints, and the deliveries a transaction enqueues
(it is the ``OutboxWriter`` of ``domain/webhooks.py``, so an event is enqueued exactly when the
state change that caused it commits) and the delivery worker claims (``Outbox``)."""

from __future__ import annotations

from typing import Protocol

from voicedock.domain.webhooks import Outbox, OutboxWriter, WebhookEndpoint


class OutboxWrites(OutboxWriter, Protocol):
    """The endpoints, and ``enqueue`` (``OutboxWriter``'s): a delivery due now; the same
    (endpoint_id, msg_id) again is a no-op."""

    async def insert_webhook_endpoint(self, endpoint: WebhookEndpoint) -> None: ...
    async def delete_webhook_endpoint(self, organization_id: str, endpoint_id: str) -> bool: ...
    async def list_webhook_endpoints(self, organization_id: str) -> list[WebhookEndpoint]:
        """The organization's endpoints, on the transaction's connection (event fan-out)."""
        ...


class OutboxReads(Protocol):
    async def list_webhook_endpoints(
        self, organization_id: str, assistant_id: str | None = None, event_type: str | None = None
    ) -> list[WebhookEndpoint]:
        """The organization's endpoints; with ``event_type``, only the enabled ones that want
        that event of that assistant (the fan-out list for ``enqueue_event``)."""
        ...

    def outbox(self, claimer: str = "") -> Outbox:
        """The delivery worker's view of the webhook outbox in this database; ``claimer``:
        the node whose worker claims (a dead node's claims are not deliveries in flight)."""
        ...


__all__ = ["OutboxReads", "OutboxWrites"]
