"""Webhook endpoints and the outbox: where an organization's events go (the event types, the
secret's format, the URL's syntax), and the delivery rows written with the state change that
caused them.

The store's ``Transaction`` is an :class:`OutboxWriter` (the call engine enqueues an event in
the same transaction as the call update); the store's ``outbox()`` is the :class:`Outbox` the
delivery worker (``voicedock.webhooks.worker``) claims from.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from yarl import URL

from voicedock.domain.attestation import CallerAttestation
from voicedock.domain.json import JsonValue
from voicedock.domain.records import utcnow
from voicedock.errors import InvalidSecret, UnsafeUrl

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format marker, not a credential
# The Standard Webhooks spec asks for at least 24 random bytes and at most 512 bits.
SECRET_MIN_BYTES = 24
SECRET_MAX_BYTES = 64


class EventType(enum.StrEnum):
    STATUS_UPDATE = "status-update"
    END_OF_CALL_REPORT = "end-of-call-report"
    TRANSCRIPT = "transcript"
    TRANSFER_UPDATE = "transfer-update"
    CAMPAIGN_UPDATE = "campaign-update"  # a campaign started, paused, resumed, ended
    CAMPAIGN_CONTACT_UPDATE = "campaign-contact-update"  # a contact's final outcome
    ANSWERING_MACHINE = "answering-machine"  # the outbound call's human/machine verdict
    PROVIDER_SWITCH = "provider-switch"  # a turn moved on to the next entry of a fallback plan
    HANDOFF = "handoff"  # a squad's member handed the call over to another (docs/squads.md)
    PHONE_MENU = "phone-menu"  # a step of a phone menu's navigation (docs/phone-menus.md)
    TEST_RUN_COMPLETED = (
        "test-run.completed"  # a test suite's run ended (docs/testing-assistants.md)
    )
    # An organization's costs this month reached its spending warning or limit (docs/billing.md)
    SPEND_THRESHOLD = "spend-threshold"
    # A caller number flagged unhealthy by its answer rate, or healthy again (docs/api.md)
    PHONE_NUMBER_HEALTH = "phone-number-health"
    # Requests voicedock makes while a call waits for the answer (not queued, not retried).
    TOOL_CALLS = "tool-calls"
    ASSISTANT_REQUEST = "assistant-request"


# --- the requests a call waits for (the call engine asks, webhooks/server_requests.py sends) ---


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """``tool-calls``: the model of ``call_id`` called the webhook tool ``name``."""

    organization_id: str
    assistant_id: str | None
    call_id: str
    tool_call_id: str
    name: str
    arguments: Mapping[str, JsonValue]
    url: str | None  # the tool's own server (None: the organization's endpoint)
    timeout_s: float


@dataclass(frozen=True, slots=True)
class InboundAssistantRequest:
    """``assistant-request``: which assistant answers the inbound call ``call_id``."""

    organization_id: str
    call_id: str
    caller: str | None
    called: str
    number_id: str
    timeout_s: float
    # The caller's STIR/SHAKEN attestation as the carrier sent it (None: none; not verified).
    attestation: CallerAttestation | None = None


def generate_secret(num_bytes: int = 32) -> str:
    """A fresh endpoint secret, ``whsec_`` + base64 of ``num_bytes`` random bytes."""
    if not SECRET_MIN_BYTES <= num_bytes <= SECRET_MAX_BYTES:
        raise InvalidSecret(f"secret length must be {SECRET_MIN_BYTES}..{SECRET_MAX_BYTES} bytes")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(num_bytes)).decode("ascii")


def decode_secret(secret: str) -> bytes:
    """The HMAC key inside ``secret`` (the ``whsec_`` prefix is optional, as in the spec)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("secret is not valid base64") from None
    if not SECRET_MIN_BYTES <= len(key) <= SECRET_MAX_BYTES:
        raise InvalidSecret(f"secret must decode to {SECRET_MIN_BYTES}..{SECRET_MAX_BYTES} bytes")
    return key


# --- an endpoint's URL: its syntax (the SSRF policy on its addresses is egress/guard.py) ---


def redact(url: str | URL) -> str:
    """The URL without credentials, query or fragment: safe for logs and error messages."""
    try:
        parsed = url if isinstance(url, URL) else URL(url)
        return str(parsed.with_user(None).with_query(None).with_fragment(None))
    except (ValueError, TypeError):
        return "<unparseable url>"


# A host with whitespace (``str.isspace``, which ``\s`` matches alike), a control character,
# a space or a zone (``%``).
_MALFORMED_HOST = re.compile(r"[\s\x00-\x20%]")


def _refused(url: URL, reason: str) -> UnsafeUrl:
    return UnsafeUrl(redact(url), reason)  # redacted only when refused: parsing is per request


def parse_url(url: str) -> tuple[URL, str, int]:
    """Syntax checks that need no DNS: returns the parsed URL, its host and port."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        raise UnsafeUrl("<unparseable url>", "not a valid URL") from None
    if parsed.scheme not in ("http", "https"):
        raise _refused(parsed, "only http and https URLs are allowed")
    if parsed.user is not None or parsed.password is not None or "@" in parsed.raw_authority:
        raise _refused(parsed, "credentials in the URL are not allowed")
    host = parsed.host
    if not host:
        raise _refused(parsed, "the URL has no host")
    host = host.strip("[]").lower()
    if _MALFORMED_HOST.search(host):
        raise _refused(parsed, "malformed host")
    try:
        port = parsed.port
    except ValueError:
        raise _refused(parsed, "invalid port") from None
    if port is None or not 0 < port < 65536:
        raise _refused(parsed, "invalid port")
    return parsed, host, port


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


@dataclass(frozen=True, slots=True)
class DeliveryCaps:
    """How many deliveries may be in flight at once, on every node together (``0``: no cap):
    to one endpoint, and to one organization's endpoints. An endpoint that answers slowly or
    not at all holds at most ``per_endpoint`` requests, an organization ``per_organization``;
    the other organizations' deliveries go on beside them."""

    per_endpoint: int = 2
    per_organization: int = 4


@dataclass(frozen=True, slots=True)
class Queued:
    """A pending delivery as a fair claim sees it (due, or leased: in flight on some node)."""

    id: str
    endpoint_id: str
    organization_id: str


def fair_share(
    due: Sequence[Queued], in_flight: Sequence[Queued], caps: DeliveryCaps, limit: int
) -> list[Queued]:
    """Which of the ``due`` deliveries (oldest due first) to claim now, up to ``limit``.

    Nothing over ``caps``, counting what is ``in_flight``; and the least busy first: the
    organization with the fewest deliveries in flight, then its endpoint with the fewest, then
    the oldest due. So an organization with a backlog, or with endpoints that keep requests
    hanging, never delays another organization's next delivery, and each endpoint's
    deliveries start in their due order."""
    by_organization: Counter[str] = Counter(q.organization_id for q in in_flight)
    by_endpoint: Counter[str] = Counter(q.endpoint_id for q in in_flight)
    queues: dict[str, list[Queued]] = {}  # per endpoint, oldest due first
    for queued in due:
        queues.setdefault(queued.endpoint_id, []).append(queued)
    order = {q.id: n for n, q in enumerate(due)}
    picked: list[Queued] = []
    while len(picked) < limit:
        best: tuple[tuple[int, int, int], str] | None = None
        for endpoint_id, queue in queues.items():
            head = queue[0]
            organization_busy = by_organization[head.organization_id]
            endpoint_busy = by_endpoint[endpoint_id]
            if caps.per_organization and organization_busy >= caps.per_organization:
                continue
            if caps.per_endpoint and endpoint_busy >= caps.per_endpoint:
                continue
            rank = (organization_busy, endpoint_busy, order[head.id])
            if best is None or rank < best[0]:
                best = (rank, endpoint_id)
        if best is None:
            break
        queue = queues[best[1]]
        chosen = queue.pop(0)
        if not queue:
            del queues[best[1]]
        picked.append(chosen)
        by_organization[chosen.organization_id] += 1
        by_endpoint[chosen.endpoint_id] += 1
    return picked


async def claim_fairly(
    heads: Callable[[], Awaitable[Sequence[Queued]]],
    lease: Callable[[Sequence[Queued]], Awaitable[None]],
    in_flight: Sequence[Queued],
    caps: DeliveryCaps,
    limit: int,
) -> list[Queued]:
    """One claim of up to ``limit`` deliveries, in rounds: ``heads`` answers every endpoint's
    oldest due delivery not leased yet (oldest due first), :func:`fair_share` picks among them
    and ``lease`` leases what it picked; the next round sees those as in flight. A round
    costs the outbox a look at each endpoint's first row, whatever its backlog."""
    claimed: list[Queued] = []
    busy = list(in_flight)
    while len(claimed) < limit:
        chosen = fair_share(await heads(), busy, caps, limit - len(claimed))
        if not chosen:
            break
        await lease(chosen)
        claimed += chosen
        busy += chosen
    return claimed


class OutboxWriter(Protocol):
    """What the call engine needs: add a delivery inside the current transaction."""

    async def enqueue(self, endpoint_id: str, event_type: str, payload: bytes, msg_id: str) -> None:
        """Add a pending delivery due now. Enqueuing the same (endpoint_id, msg_id) again
        is a no-op, so a replayed state change does not send an event twice."""
        ...


class Outbox(OutboxWriter, Protocol):
    """What the delivery worker needs."""

    async def claim_due(
        self, now: datetime, limit: int, lease: timedelta, *, caps: DeliveryCaps
    ) -> list[Delivery]:
        """Up to ``limit`` pending deliveries due at ``now`` for enabled endpoints, chosen by
        :func:`claim_fairly` within ``caps`` (what other claims leased, on any node, counts),
        each leased until ``now + lease``. Claims never hand out one delivery twice, and one
        claim sees what the claims before it leased."""
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
