"""The URLs tenants name (``[egress]``): which addresses and provider hosts they may reach
(webhooks, speech providers, tools); ``voicedock.egress`` enforces it."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import msgspec

from voicedock.config.table_types import Table, matching
from voicedock.domain import provider_urls
from voicedock.errors import ConfigError
from voicedock.validation import WHITESPACE

# The hosts the public speech providers are reached at (the clients' default URLs): what a
# tenant's provider URL may name unless the operator's [egress] provider_hosts says otherwise.
DEFAULT_PROVIDER_HOSTS = (
    "api.openai.com",
    "api.mistral.ai",
    "api.x.ai",
    "api.deepgram.com",
    "api.elevenlabs.io",
)

# A host (or *.domain) and port as a provider URL names them, then the one path allowed there.
ProviderHost = Annotated[
    str,
    matching(
        rf"[{WHITESPACE}]*"
        rf"((\*\.)?{provider_urls.NAME_PATTERN}|{provider_urls.IPV6_PATTERN})"
        rf"{provider_urls.PORT_PATTERN}"
        rf"({provider_urls.PATH_PATTERN})?"
        rf"[{WHITESPACE}]*",
        "a host name, host:port or *.domain (no scheme), then optionally its one /path",
    ),
]


class EgressSettings(Table):
    """[egress]: the URLs tenants name (docs/speech.md, docs/webhooks.md)."""

    # Loopback/private addresses are refused unless allowed (the lab allows loopback).
    allow_loopback: bool = False
    allow_private: bool = False
    # Networks (CIDR) or "address:port" allowed despite the above, e.g. "127.0.0.1:11434".
    allowed_networks: list[str] = msgspec.field(default_factory=list)
    blocked_networks: list[str] = msgspec.field(default_factory=list)  # never called
    # Hosts a tenant's provider URL may name: "host", "host:port" or "*.domain" (any path),
    # each optionally followed by the one path allowed there ("llm.internal:8000/v1").
    provider_hosts: list[ProviderHost] = msgspec.field(
        default_factory=lambda: list(DEFAULT_PROVIDER_HOSTS)
    )

    def check(self) -> None:
        for name, entries in (
            ("allowed_networks", self.allowed_networks),
            ("blocked_networks", self.blocked_networks),
        ):
            for i, entry in enumerate(entries):
                try:
                    network_entry(entry)
                except ValueError:
                    raise ConfigError(
                        f"egress.{name}[{i}]", "not an IP network (CIDR) or address:port"
                    ) from None


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def network_entry(entry: str) -> tuple[IPNetwork, int | None]:
    """An ``[egress]`` network: a CIDR, an address, or ``address:port`` / ``[v6]:port``
    (that port only). Raises ``ValueError``."""
    text = entry.strip()
    port: int | None = None
    if text.startswith("[") and "]:" in text:
        text, _, port_text = text[1:].partition("]:")
        port = int(port_text)
    elif text.count(":") == 1 and "/" not in text:
        text, _, port_text = text.partition(":")
        port = int(port_text)
    if port is not None and not 0 < port < 65536:
        raise ValueError("port out of range")
    return ipaddress.ip_network(text.strip("[]"), strict=False), port
