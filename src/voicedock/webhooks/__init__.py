"""Webhooks: signed event delivery to customer endpoints through a transactional outbox.

Modules:
    signing  — Standard Webhooks signatures (also usable by receiving applications)
    ssrf     — URL policy: which endpoints voicedock may call
    events   — payload builders for the event types
    retry    — backoff schedule and ``Retry-After`` parsing
    outbox   — the ``Outbox`` protocol the store implements, plus an in-memory one
    worker   — ``DeliveryWorker``: claims due deliveries and POSTs them
"""
