"""Webhooks: signed event delivery to customer endpoints through a transactional outbox.

Which addresses may be called is the egress guard's (``voicedock.egress``).

Modules:
    signing  — Standard Webhooks signatures (also usable by receiving applications)
    events   — payload builders for the event types
    retry    — backoff schedule and ``Retry-After`` parsing
    outbox   — enqueuing an event (the ``Outbox`` protocol is in domain, the SQL in store)
    worker   — ``DeliveryWorker``: claims due deliveries and POSTs them
"""

from voicedock.domain.webhooks import Delivery, EventType, Outbox, OutboxWriter, generate_secret
from voicedock.errors import UnsafeUrl, VerificationError, WebhookError
from voicedock.webhooks.events import encode_payload
from voicedock.webhooks.outbox import enqueue_event
from voicedock.webhooks.retry import RetryPolicy
from voicedock.webhooks.signing import sign, verify
from voicedock.webhooks.worker import DeliveryWorker, WorkerSettings

__all__ = [
    "Delivery",
    "DeliveryWorker",
    "EventType",
    "Outbox",
    "OutboxWriter",
    "RetryPolicy",
    "UnsafeUrl",
    "VerificationError",
    "WebhookError",
    "WorkerSettings",
    "encode_payload",
    "enqueue_event",
    "generate_secret",
    "sign",
    "verify",
]
