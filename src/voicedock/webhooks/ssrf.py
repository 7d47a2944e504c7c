"""Which webhook URLs voicedock may call (server-side request forgery guard).

A webhook URL is chosen by an API client, and voicedock runs next to the PBX on a private
network, so a URL is refused unless every address it names or resolves to is public:

* ``http``/``https`` only, no ``user:pass@``, a host and a valid port;
* numeric hosts must be canonical dotted quads or bracketed IPv6: ``http://2130706433/``,
  ``http://0x7f.1/`` or ``http://017700000001/`` (which socket libraries read as 127.0.0.1)
  are refused rather than interpreted;
* IPv6 forms that embed IPv4 (``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4) are judged
  by the IPv4 address inside;
* loopback, private and shared (CGNAT) ranges are refused unless the lab enables
  ``allow_loopback`` / ``allow_private``; link-local (cloud metadata), multicast, unspecified
  and reserved addresses are always refused, as are the PBX's own addresses (``blocked``).

``check_url`` runs when an endpoint is configured and again before each delivery; the worker's
HTTP connector also resolves through :class:`GuardedResolver`, so a DNS answer that changes
between the check and the connection (DNS rebinding) is checked again where it is used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from voicedock.domain.webhooks import parse_url, redact
from voicedock.errors import UnsafeUrl

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Resolves a host name to the IP address strings it would be connected to.
HostResolver = Callable[[str, int], Awaitable[list[str]]]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
# WHATWG URL: a host whose last label is a number is an IPv4 address in some notation.
_NUMERIC_LABEL = re.compile(r"(0[xX][0-9a-fA-F]*|[0-9]+)")


@dataclass(frozen=True, slots=True)
class BlockedTarget:
    """An address range never to call, optionally only on one port (e.g. the PBX's ARI)."""

    network: IPNetwork
    port: int | None = None

    @classmethod
    def parse(cls, value: str, port: int | None = None) -> BlockedTarget:
        return cls(ipaddress.ip_network(value, strict=False), port)


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    """What the deployment allows. The defaults are the production ones."""

    allow_loopback: bool = False
    allow_private: bool = False
    blocked: tuple[BlockedTarget, ...] = field(default_factory=tuple)
    # Loopback or private ranges the deployment explicitly allows (e.g. an internal CRM).
    allowed: tuple[IPNetwork, ...] = field(default_factory=tuple)

    def explicitly_allows(self, address: IPAddress) -> bool:
        return any(address.version == n.version and address in n for n in self.allowed)


@dataclass(frozen=True, slots=True)
class CheckedUrl:
    """A URL that passed the policy, with the addresses it was vetted against."""

    url: URL
    host: str
    port: int
    addresses: tuple[str, ...]


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (``getaddrinfo``), TCP addresses only."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise UnsafeUrl(host, f"host does not resolve: {error.strerror or error}") from None
    return [str(info[4][0]) for info in infos]


def embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address stands for, if it embeds one; else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def address_refusal(address: IPAddress, port: int, policy: UrlPolicy) -> str | None:
    """Why ``address`` may not be called under ``policy``, or ``None`` if it may."""
    inner = embedded_ipv4(address)
    for target in policy.blocked:
        if target.port not in (None, port):
            continue
        if any(
            a.version == target.network.version and a in target.network for a in (address, inner)
        ):
            return "address of the PBX or another blocked service"
    # An IPv6 form that embeds IPv4 is judged by the IPv4 address it leads to.
    address = inner
    if address.is_unspecified:
        return "unspecified address"
    if address.is_loopback:
        allowed = policy.allow_loopback or policy.explicitly_allows(address)
        return None if allowed else "loopback address"
    if address.is_link_local:
        return "link-local address"
    if address.is_multicast:
        return "multicast address"
    if address.is_reserved:
        return "reserved address"
    if address.is_private or address in _SHARED_CGNAT or not address.is_global:
        allowed = policy.allow_private or policy.explicitly_allows(address)
        return None if allowed else "private address"
    return None


def _literal_host(host: str) -> IPAddress | None:
    """The IP address a URL host is written as, or ``None`` for a DNS name.

    Raises :class:`UnsafeUrl` for numeric hosts that are not canonical, since resolvers
    disagree on what they mean.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    last_label = host.rstrip(".").rsplit(".", 1)[-1]
    if _NUMERIC_LABEL.fullmatch(last_label):
        raise UnsafeUrl(host, "non-canonical numeric host")
    return None


async def check_url(
    url: str,
    policy: UrlPolicy,
    resolver: HostResolver = system_resolver,
) -> CheckedUrl:
    """Refuse (:class:`UnsafeUrl`) a URL that names or resolves to any forbidden address."""
    parsed, host, port = parse_url(url)
    shown = redact(parsed)
    literal = _literal_host(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = await resolver(host, port)
        except UnsafeUrl as error:
            raise UnsafeUrl(shown, error.reason) from None
        if not addresses:
            raise UnsafeUrl(shown, "host does not resolve")
    for raw in addresses:
        try:
            address = ipaddress.ip_address(raw.split("%", 1)[0])
        except ValueError:
            raise UnsafeUrl(shown, "resolver returned a malformed address") from None
        reason = address_refusal(address, port, policy)
        if reason is not None:
            # Every address must be safe: the client may connect to any of them.
            raise UnsafeUrl(shown, reason)
    return CheckedUrl(url=parsed, host=host, port=port, addresses=tuple(addresses))


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that vets every answer at connection time (DNS rebinding guard).

    Use with ``TCPConnector(resolver=..., use_dns_cache=False)``. aiohttp does not call the
    resolver for IP-literal hosts; :func:`check_url` covers those before each request.
    """

    def __init__(self, policy: UrlPolicy, resolver: HostResolver = system_resolver) -> None:
        self._policy = policy
        self._resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        checked = await check_url(
            f"http://{_bracket(host)}:{port or 80}/", self._policy, self._resolver
        )
        results: list[ResolveResult] = []
        for raw in checked.addresses:
            address = ipaddress.ip_address(raw.split("%", 1)[0])
            results.append(
                ResolveResult(
                    hostname=host,
                    host=str(address),
                    port=port,
                    family=socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
            )
        return results

    async def close(self) -> None:
        return None


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host
