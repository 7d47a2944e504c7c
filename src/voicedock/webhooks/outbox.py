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

from collections.abc import Iterable

from voicedock.domain.webhooks import OutboxWriter
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
