"""The webhook outbox: deliveries are rows written with the state change that caused them.

The call engine enqueues an event in the SAME transaction as the call update (the store's
``Transaction`` implements :class:`OutboxWriter`), so an event is sent if and only if the
change committed, and a crash or restart loses nothing: the :class:`DeliveryWorker` picks
pending rows up again. The worker only talks to :class:`Outbox`.

Claiming takes a lease: a claimed row is invisible to other claims until the lease expires,
so two workers (or two service nodes) do not send the same attempt twice, and a worker that
dies mid-request leaves rows that become due again when their lease runs out. A leased row is
a delivery in flight: claims count them against the ``DeliveryCaps`` (per endpoint, per
organization) and share what is due fairly (``domain.webhooks.claim_fairly``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from voicedock.domain.webhooks import OutboxWriter
from voicedock.store.base import Transaction
from voicedock.webhooks.events import WebhookPayload, encode_payload
from voicedock.webhooks.signing import new_message_id


async def enqueue_event(
    writer: OutboxWriter, endpoint_ids: Iterable[str], payload: WebhookPayload
) -> str:
    """Enqueue one event for each subscribed endpoint; returns its ``webhook-id``."""
    body = encode_payload(payload)
    msg_id = new_message_id()
    for endpoint_id in endpoint_ids:
        await writer.enqueue(endpoint_id, str(payload["type"]), body, msg_id)
    return msg_id


class OrganizationWebhooks:
    """Events of an organization's records (campaigns, test runs, spending), enqueued in the
    transaction that makes the change for the organization's endpoints that want them;
    ``on_enqueued`` wakes the delivery worker."""

    def __init__(self, on_enqueued: Callable[[], None] = lambda: None) -> None:
        self._on_enqueued = on_enqueued

    async def _publish(
        self,
        tx: Transaction,
        organization_id: str,
        assistant_id: str | None,
        payload: WebhookPayload,
    ) -> None:
        """``payload`` for the endpoints of ``assistant_id`` or of every assistant (``None``:
        only those not scoped to one) that take its type."""
        endpoints = await tx.list_webhook_endpoints(organization_id)
        chosen = [e.id for e in endpoints if e.wants(assistant_id, str(payload["type"]))]
        if chosen:
            await enqueue_event(tx, chosen, payload)
            self._on_enqueued()
