"""Egress: every outbound connection to a URL a tenant can name goes through one guard.

Modules:
    guard      — ``Egress``/``EgressPolicy``: which addresses may be connected to, checked
                 when a URL is configured and again at connect time (DNS rebinding)
    providers  — which hosts and paths a tenant may name as a speech provider
    caps       — ``ResponseCaps``: how much is read from one answer
    settings   — the policy of a running service, from ``[egress]``
    lazy_session — ``LazySession``: one owner's client session, opened on first use, closed once

Used by webhooks (deliveries, tools, assistant-request) and every cloud speech provider.
"""

from voicedock.egress.caps import DEFAULT_CAPS, ResponseCaps
from voicedock.egress.guard import (
    CheckedUrl,
    Egress,
    EgressPolicy,
    GuardedResolver,
    HostResolver,
    NamedTarget,
    NetworkTarget,
    check_url,
    system_resolver,
)
from voicedock.egress.providers import provider_url_refusal

__all__ = [
    "DEFAULT_CAPS",
    "CheckedUrl",
    "Egress",
    "EgressPolicy",
    "GuardedResolver",
    "HostResolver",
    "NamedTarget",
    "NetworkTarget",
    "ResponseCaps",
    "check_url",
    "provider_url_refusal",
    "system_resolver",
]
