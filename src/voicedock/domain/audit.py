"""The audit trail's record: who (an API key, or a console session signed in with one) did what
to which resource of their organization, when, and from which address (masked).

An event is appended and never changed; retention (``[retention] audit_days``) deletes the
oldest. Its ``detail`` is a few short words about the action (a transfer's mode, a usage
export's format), never a secret, a transcript or a phone number.
"""

from __future__ import annotations

import enum
import ipaddress
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from voicedock.domain.records import utcnow

IPV4_KEPT_BITS = 24  # 192.0.2.77 -> 192.0.2.0
IPV6_KEPT_BITS = 48  # 2001:db8:1234:5678::1 -> 2001:db8:1234::


class ActorKind(enum.StrEnum):
    """How the actor acted: through the API with a key's Bearer header, or the web console's
    session cookie (signed in with that key); or the operator, at the node's command line
    (``voicedock keys``), as a local account."""

    API_KEY = "api_key"
    CONSOLE_SESSION = "console_session"
    OPERATOR = "operator"


# What the trail records, by resource: "<resource type>.<what happened>".
ACTIONS = (
    "assistant.created",
    "assistant.updated",
    "assistant.deleted",
    "tool_template.created",
    "tool_template.updated",
    "tool_template.deleted",
    "squad.created",
    "squad.updated",
    "squad.deleted",
    "knowledge_base.created",
    "knowledge_base.updated",
    "knowledge_base.deleted",
    "knowledge_document.uploaded",
    "knowledge_document.deleted",
    "analysis_template.created",
    "analysis_template.updated",
    "analysis_template.deleted",
    "webhook.created",
    "webhook.deleted",
    "api_key.created",
    "api_key.renamed",
    "api_key.revoked",
    "api_key.listen_allowed",
    "api_key.listen_denied",
    "provider_key.created",
    "provider_key.rotated",
    "provider_key.deleted",
    "call.listen",
    "call.whisper",
    "call.take_over",
    "recording.downloaded",
    "usage.exported",
    "console.signed_in",
    "domain.created",
    "domain.verified",
    "domain.deleted",
    "branding.updated",
    "caller_memory.deleted",
)


@dataclass(slots=True)
class AuditEvent:
    """One action of an organization's key (or console session), as the trail keeps it."""

    organization_id: str
    actor: str  # the API key's id (a console session acts with its key); the operator's account
    actor_kind: ActorKind
    action: str  # one of ACTIONS
    resource_type: str
    resource_id: str | None
    address: str | None = None  # the client's address, masked (``mask_address``)
    console_session: str | None = None  # a console session's short id (``session_id``)
    detail: dict[str, str] | None = None
    id: str = field(default_factory=lambda: f"ae_{uuid.uuid4().hex}")
    created_at: datetime = field(default_factory=utcnow)
    seq: int = 0  # assigned by the store: the order of events created in the same microsecond


def mask_address(address: str | None) -> str | None:
    """A client's address, masked: an IPv4 address's last octet zeroed, an IPv6 address cut
    to its /48 (an IPv4-mapped one as IPv4); None when it is no IP address (a Unix socket)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    kept = IPV4_KEPT_BITS if ip.version == 4 else IPV6_KEPT_BITS
    return str(ipaddress.ip_network(f"{ip}/{kept}", strict=False).network_address)


__all__ = ["ACTIONS", "ActorKind", "AuditEvent", "mask_address"]
