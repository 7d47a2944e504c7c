"""Webhooks (``[webhooks]``): how this node delivers them, and the endpoints the operator
defines for organizations (mirrored into the store at start-up)."""

from __future__ import annotations

from collections.abc import Set
from typing import Annotated

import msgspec
from msgspec import Meta

from voicedock.config.table_types import NotEmpty, Table, Token, one_of
from voicedock.domain.webhooks import DeliveryCaps, EventType, decode_secret, parse_url
from voicedock.errors import ConfigError, InvalidSecret, UnsafeUrl

EventTypeName = Annotated[str, one_of(sorted(t.value for t in EventType))]


class WebhookEndpointSettings(Table):
    """A webhook endpoint defined in the configuration (mirrored into the store at start-up)."""

    name: Token  # identifies the endpoint across restarts (with the organization)
    organization: NotEmpty
    url: str
    secret: str  # whsec_ + base64 of 24-64 random bytes; `voicedock` never prints it
    assistant: str = ""  # assistant name: only this assistant's events (an override)
    event_types: list[EventTypeName] = msgspec.field(
        default_factory=list
    )  # empty: every type but transcript

    def check(self, key: str) -> None:
        # Only what needs no network: the URL's syntax here, its addresses when the endpoint is
        # mirrored into the store (egress.check_url) and again before every delivery.
        try:
            parse_url(self.url)
        except UnsafeUrl as exc:
            raise ConfigError(f"{key}.url", exc.reason) from None
        try:
            decode_secret(self.secret)
        except InvalidSecret as exc:
            raise ConfigError(f"{key}.secret", f"{exc} (expected whsec_ + base64)") from None


Slots = Annotated[int, Meta(ge=0, le=256)]  # 0: no cap
Seconds = Annotated[int, Meta(ge=1, le=300)]


class WebhookSettings(Table):
    # The addresses webhooks may reach are [egress]'s (the keys once here are read as theirs).
    concurrency: Annotated[int, Meta(ge=1, le=256)] = 32  # requests in flight on this node
    # Requests in flight to one endpoint, and to one organization's endpoints, on every node
    # together (0: no cap): a hanging endpoint holds no more slots than these (docs/webhooks.md).
    concurrency_per_endpoint: Slots = DeliveryCaps().per_endpoint  # 2
    concurrency_per_organization: Slots = DeliveryCaps().per_organization  # 4
    request_timeout_seconds: Seconds = 15
    connect_timeout_seconds: Seconds = 5
    poll_interval_ms: Annotated[int, Meta(ge=50, le=60_000)] = 1000
    endpoints: list[WebhookEndpointSettings] = msgspec.field(default_factory=list)

    def check(self, assistants: Set[tuple[str, str]]) -> None:
        """Each endpoint named once per organization; ``assistants``: (organization, name)."""
        seen: set[tuple[str, str]] = set()
        for i, e in enumerate(self.endpoints):
            key = f"webhooks.endpoints[{i}]"
            if (e.organization, e.name) in seen:
                raise ConfigError(f"{key}.name", f"duplicate endpoint {e.name!r}")
            seen.add((e.organization, e.name))
            e.check(key)
            if e.assistant and (e.organization, e.assistant) not in assistants:
                raise ConfigError(f"{key}.assistant", f"unknown assistant {e.assistant!r}")
