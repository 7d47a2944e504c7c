"""Start-up validation of the ``[webhooks]`` settings: a bad value names its key.

Only what needs no network: the URL's syntax is checked here, its addresses when the endpoint
is mirrored into the store (``check_url``) and again before every delivery.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from voicedock.errors import ConfigError, InvalidSecret, UnsafeUrl
from voicedock.validation import is_token
from voicedock.webhooks.events import EventType
from voicedock.webhooks.signing import decode_secret
from voicedock.webhooks.ssrf import parse_url

if TYPE_CHECKING:
    from voicedock.config import WebhookSettings

EVENT_TYPES = frozenset(t.value for t in EventType)


def check_webhook_settings(w: WebhookSettings, assistant_keys: set[tuple[str, str]]) -> None:
    _range("webhooks.concurrency", w.concurrency, 1, 256)
    _range("webhooks.request_timeout_seconds", w.request_timeout_seconds, 1, 300)
    _range("webhooks.connect_timeout_seconds", w.connect_timeout_seconds, 1, 300)
    _range("webhooks.poll_interval_ms", w.poll_interval_ms, 50, 60_000)
    for name in ("allowed_networks", "blocked_networks"):
        for i, cidr in enumerate(getattr(w, name)):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ConfigError(f"webhooks.{name}[{i}]", "not an IP network (CIDR)") from None
    seen: set[tuple[str, str]] = set()
    for i, e in enumerate(w.endpoints):
        key = f"webhooks.endpoints[{i}]"
        if not is_token(e.name):
            raise ConfigError(f"{key}.name", "letters, digits, '_', '.', '-' only")
        if not e.organization.strip():
            raise ConfigError(f"{key}.organization", "must not be empty")
        if (e.organization, e.name) in seen:
            raise ConfigError(f"{key}.name", f"duplicate endpoint {e.name!r}")
        seen.add((e.organization, e.name))
        try:
            parse_url(e.url)
        except UnsafeUrl as exc:
            raise ConfigError(f"{key}.url", exc.reason) from None
        try:
            decode_secret(e.secret)
        except InvalidSecret as exc:
            raise ConfigError(f"{key}.secret", f"{exc} (expected whsec_ + base64)") from None
        for j, event_type in enumerate(e.event_types):
            if event_type not in EVENT_TYPES:
                choices = ", ".join(sorted(EVENT_TYPES))
                raise ConfigError(f"{key}.event_types[{j}]", f"must be one of {choices}")
        if e.assistant and (e.organization, e.assistant) not in assistant_keys:
            raise ConfigError(f"{key}.assistant", f"unknown assistant {e.assistant!r}")


def _range(key: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigError(key, f"must be {low}-{high}")
