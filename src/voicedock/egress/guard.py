"""The egress guard: which addresses voicedock may connect to for a URL someone named.

Webhook endpoints, tool servers, the organization's assistant-request server and the speech
providers of an assistant (LLM, STT, TTS, realtime) are URLs a tenant chooses, while
voicedock runs next to the PBX on a private network. So a connection is refused unless every
address the URL names or resolves to is allowed:

* ``http``/``https`` (``ws``/``wss`` for provider sockets) only, no ``user:pass@``, a host and
  a valid port;
* numeric hosts must be canonical dotted quads or bracketed IPv6: ``http://2130706433/``,
  ``http://0x7f.1/`` or ``http://017700000001/`` (which socket libraries read as 127.0.0.1)
  are refused rather than interpreted;
* IPv6 forms that embed IPv4 (``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4) are judged
  by the IPv4 address inside;
* loopback, private and shared (CGNAT) ranges are refused unless the operator allows them
  (``[egress] allow_loopback`` / ``allow_private``, or a network or ``address:port`` in
  ``allowed_networks``); link-local (cloud metadata), multicast, unspecified and reserved
  addresses are always refused, as are the operator's own services (``blocked``: the PBX's
  control ports, voicedock's listeners, its database), named by address or by host name: a
  name (``asterisk`` in a compose file) is resolved when a connection is checked, and every
  address it leads to is refused on that port;
* IPv6 site-local ``fec0::/10`` (deprecated, still routed inside some networks) is a private
  range.

:func:`check_url` runs when a URL is configured and again before each request; sessions made
by :meth:`Egress.session` also resolve through :class:`GuardedResolver`, so a DNS answer that
changes between the check and the connection (DNS rebinding) is checked again where it is
used, and check IP-literal hosts of every request (redirects included) before connecting.
Which *hosts* a tenant may name as a speech provider is ``voicedock.egress.providers``.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace

import aiohttp
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_middlewares import ClientMiddlewareType
from yarl import URL

from voicedock.domain.webhooks import parse_url, redact
from voicedock.egress.caps import DEFAULT_CAPS, ResponseCaps
from voicedock.errors import UnsafeUrl

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Resolves a host name to the IP address strings it would be connected to.
HostResolver = Callable[[str, int], Awaitable[list[str]]]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")  # deprecated; Python deems it global
BLOCKED = "address of the PBX or another blocked service"
# WHATWG URL: a host whose last label is a number is an IPv4 address in some notation.
_NUMERIC_LABEL = re.compile(r"(0[xX][0-9a-fA-F]*|[0-9]+)")


@dataclass(frozen=True, slots=True)
class NetworkTarget:
    """An address range, optionally only one port of it (e.g. the PBX's ARI, a local LLM)."""

    network: IPNetwork
    port: int | None = None

    @classmethod
    def parse(cls, value: str, port: int | None = None) -> NetworkTarget:
        return cls(ipaddress.ip_network(value, strict=False), port)

    def matches(self, address: IPAddress, port: int) -> bool:
        return (
            self.port in (None, port)
            and address.version == self.network.version
            and address in self.network
        )


@dataclass(frozen=True, slots=True)
class NamedTarget:
    """A service of the operator's given by host name and port (the PBX as ``asterisk:8088``,
    the database as ``postgres:5432``): its addresses are known only by resolving the name."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """What the operator allows. The defaults are the production ones (``[egress]``)."""

    allow_loopback: bool = False
    allow_private: bool = False
    blocked: tuple[NetworkTarget, ...] = field(default_factory=tuple)
    # The same, named by host: resolved when a connection on that port is checked.
    blocked_names: tuple[NamedTarget, ...] = field(default_factory=tuple)
    # Loopback or private ranges the operator explicitly allows (an internal CRM, a local LLM).
    allowed: tuple[NetworkTarget, ...] = field(default_factory=tuple)
    # Hosts a tenant may name as a speech provider (``voicedock.egress.providers``).
    provider_hosts: tuple[str, ...] = field(default_factory=tuple)
    # The addresses of the operator's own ``[speech]`` URLs: allowed to provider connections.
    provider_allowed: tuple[NetworkTarget, ...] = field(default_factory=tuple)

    def explicitly_allows(self, address: IPAddress, port: int) -> bool:
        return any(target.matches(address, port) for target in self.allowed)

    def for_providers(self) -> EgressPolicy:
        """The policy of provider connections: the operator's own URLs allowed too."""
        if not self.provider_allowed:
            return self
        return replace(self, allowed=self.allowed + self.provider_allowed, provider_allowed=())


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


def is_public(address: IPAddress) -> bool:
    """Whether an address is on the public internet (an embedded IPv4 address judged)."""
    inner = embedded_ipv4(address)
    return inner.is_global and inner not in _SHARED_CGNAT and inner not in _SITE_LOCAL


def address_refusal(address: IPAddress, port: int, policy: EgressPolicy) -> str | None:
    """Why ``address`` may not be called under ``policy``, or ``None`` if it may (the
    services ``policy.blocked_names`` names need DNS: :func:`check_url` asks it)."""
    inner, kind = _kind(address)
    for target in policy.blocked:
        if target.matches(address, port) or target.matches(inner, port):
            return BLOCKED
    # An IPv6 form that embeds IPv4 is judged by the IPv4 address it leads to.
    if kind == "loopback address":
        allowed = policy.allow_loopback or policy.explicitly_allows(inner, port)
        return None if allowed else kind
    if kind == "private address":
        allowed = policy.allow_private or policy.explicitly_allows(inner, port)
        return None if allowed else kind
    return kind


@functools.lru_cache(maxsize=4096)
def _kind(address: IPAddress) -> tuple[IPAddress, str | None]:
    """The address ``address`` is judged as (an embedded IPv4 address taken) and what kind
    of address that is, named as a refusal, ``None`` for a public one: the part of the
    verdict the policy does not change, kept per address (addresses are immutable)."""
    address = embedded_ipv4(address)
    if address.is_unspecified:
        return address, "unspecified address"
    if address.is_loopback:
        return address, "loopback address"
    if address.is_link_local:
        return address, "link-local address"
    if address.is_multicast:
        return address, "multicast address"
    if address.is_reserved:
        return address, "reserved address"
    if address.is_private or not is_public(address):
        return address, "private address"
    return address, None


def literal_host(host: str) -> IPAddress | None:
    """The IP address a URL host is written as, or ``None`` for a DNS name.

    Raises :class:`UnsafeUrl` for numeric hosts that are not canonical, since resolvers
    disagree on what they mean.
    """
    address, canonical = _literal(host)
    if not canonical:
        raise UnsafeUrl(host, "non-canonical numeric host")
    return address


@functools.lru_cache(maxsize=4096)
def _literal(host: str) -> tuple[IPAddress | None, bool]:
    """``literal_host``'s answer, kept per host (a DNS name's costs two parse errors): the
    address or ``None``, and whether the host is canonical."""
    try:
        return ipaddress.ip_address(host), True
    except ValueError:
        pass
    last_label = host.rstrip(".").rsplit(".", 1)[-1]
    return None, not _NUMERIC_LABEL.fullmatch(last_label)


def parse_target(url: str | URL) -> tuple[URL, str, int]:
    """Syntax checks that need no DNS (``UnsafeUrl``): the URL, its host and port. A
    ``ws``/``wss`` URL is judged as the ``http``/``https`` request that opens it."""
    text = str(url)
    for socket_scheme, http_scheme in (("ws://", "http://"), ("wss://", "https://")):
        if text[: len(socket_scheme)].lower() == socket_scheme:
            text = http_scheme + text[len(socket_scheme) :]
    return parse_url(text)


def name_refusal(host: str, port: int, policy: EgressPolicy) -> str | None:
    """Why a URL host may not be called by its name alone: one of the operator's services
    named as the operator named it (``asterisk:5038``). Its address is checked where the
    connection is made (:func:`check_url`)."""
    host = host.lower().rstrip(".")
    for target in policy.blocked_names:
        if target.port == port and target.host.lower().rstrip(".") == host:
            return BLOCKED
    return None


def literal_refusal(url: str | URL, policy: EgressPolicy) -> str | None:
    """Why a URL may be refused without any DNS lookup: its syntax, its IP-literal host's
    address, or the host name of one of the operator's services (a DNS name's addresses are
    checked where it is used, by the guarded resolver)."""
    try:
        _parsed, host, port = parse_target(url)
        literal = literal_host(host)
    except UnsafeUrl as error:
        return error.reason
    if literal is None:
        return name_refusal(host, port, policy)
    return address_refusal(literal, port, policy)


async def blocked_name_refusal(
    port: int, addresses: list[str], policy: EgressPolicy, resolver: HostResolver
) -> str | None:
    """Why ``addresses`` may not be called on ``port``: they are those of a service the
    operator named by host (each name blocked on that port is resolved now); else ``None``.
    A name that does not resolve refuses the connection (its service's address cannot be told
    apart), a name that leads to loopback refuses every loopback address (a service there
    listens on all of them)."""
    targets = [t for t in policy.blocked_names if t.port == port]
    if not targets:
        return None
    ours = {_judged(raw) for raw in addresses}
    for target in targets:
        try:
            theirs = {_judged(raw) for raw in await resolver(target.host, port)}
        except (UnsafeUrl, ValueError):
            theirs = set()
        loopback = any(a.is_loopback for a in theirs) and any(a.is_loopback for a in ours)
        if not theirs or ours & theirs or loopback:
            return BLOCKED  # the reason never names the operator's host
    return None


def _judged(raw: str) -> IPAddress:
    """A resolver's address as the guard compares it (zone dropped, embedded IPv4 taken)."""
    return embedded_ipv4(_answer(raw))


@functools.lru_cache(maxsize=4096)
def _answer(raw: str) -> IPAddress:
    """A resolver's address string as an address (its zone dropped), kept per string: every
    answer is still judged where it is used; only its parse is not repeated."""
    return ipaddress.ip_address(raw.split("%", 1)[0])


async def check_url(
    url: str,
    policy: EgressPolicy,
    resolver: HostResolver = system_resolver,
) -> CheckedUrl:
    """Refuse (:class:`UnsafeUrl`) a URL that names or resolves to any forbidden address."""
    parsed, host, port = parse_target(url)
    literal = literal_host(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = await resolver(host, port)
        except UnsafeUrl as error:
            raise UnsafeUrl(redact(parsed), error.reason) from None
        if not addresses:
            raise UnsafeUrl(redact(parsed), "host does not resolve")
    for raw in addresses:
        try:
            address = _answer(raw)
        except ValueError:
            raise UnsafeUrl(redact(parsed), "resolver returned a malformed address") from None
        reason = address_refusal(address, port, policy)
        if reason is not None:
            # Every address must be safe: the client may connect to any of them.
            raise UnsafeUrl(redact(parsed), reason)
    reason = name_refusal(host, port, policy) or await blocked_name_refusal(
        port, addresses, policy, resolver
    )
    if reason is not None:
        raise UnsafeUrl(redact(parsed), reason)
    return CheckedUrl(url=parsed, host=host, port=port, addresses=tuple(addresses))


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that vets every answer at connection time (DNS rebinding guard).

    Use with ``TCPConnector(resolver=..., use_dns_cache=False)``. aiohttp does not call the
    resolver for IP-literal hosts; :func:`check_url` covers those before each request.
    """

    def __init__(self, policy: EgressPolicy, resolver: HostResolver = system_resolver) -> None:
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
            address = _answer(raw)
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


def literal_guard(policy: EgressPolicy, resolver: HostResolver) -> ClientMiddlewareType:
    """aiohttp client middleware checking the IP-literal host of every request a session
    sends (redirects and websocket handshakes included): the resolver is not asked for those.
    A literal on the port of a service the operator named by host is checked against that
    name's addresses (:func:`check_url`)."""

    async def guard(request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        reason = literal_refusal(request.url, policy)
        if reason is None and policy.blocked_names:
            _parsed, host, port = parse_target(request.url)
            if literal_host(host) is not None:
                reason = await blocked_name_refusal(port, [host], policy, resolver)
        if reason is not None:
            raise UnsafeUrl(redact(request.url), reason)
        return await handler(request)

    return guard


@dataclass(frozen=True, slots=True)
class Egress:
    """The guard one component connects through: the policy, the resolver it checks DNS
    answers with, and the response size caps."""

    policy: EgressPolicy = field(default_factory=EgressPolicy)
    resolver: HostResolver = system_resolver
    caps: ResponseCaps = DEFAULT_CAPS

    async def check(self, url: str) -> CheckedUrl:
        """``check_url`` under this guard's policy and resolver."""
        return await check_url(url, self.policy, self.resolver)

    def for_providers(self) -> Egress:
        """This guard for speech provider connections (the operator's own URLs allowed)."""
        return replace(self, policy=self.policy.for_providers())

    def session(
        self,
        *,
        limit: int = 100,
        timeout: aiohttp.ClientTimeout | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientSession:
        """A client session whose every connection passes the guard: DNS answers through
        :class:`GuardedResolver` (no DNS cache), IP literals through :func:`literal_guard`;
        no proxy from the environment, no cookies carried between servers."""
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(self.policy, self.resolver), use_dns_cache=False, limit=limit
        )
        return aiohttp.ClientSession(
            connector=connector,
            middlewares=(literal_guard(self.policy, self.resolver),),
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.client.DEFAULT_TIMEOUT if timeout is None else timeout,
            headers=headers,
        )
