"""An organization's domains and branding, as types.

A domain (``/domains``, ``voicedock organizations domains``) is a host name one organization
holds, unique across every organization: a ``console`` domain is where its people reach the
web console and its apps the API (the console there shows the organization's branding and
signs in only its keys); a ``sip`` domain names it in the Request-URI of inbound calls
routed by domain. A domain the operator assigns is ``verified``; one an organization proposes
stays ``pending`` until the TXT record ``_voicedock.<host>`` holds its verification token.

The branding (``voicedock organizations set-branding``) is the operator's: the name and the
logo the console shows on the organization's console domains. Every size is bounded here.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from voicedock.domain.records import utcnow

MAX_HOST_CHARS = 253  # a DNS name's length, dots included (RFC 1035)
MAX_LABEL_CHARS = 63
MAX_DOMAINS_PER_ORGANIZATION = 50
MAX_BRAND_NAME_CHARS = 200
MAX_LOGO_BYTES = 256 * 1024
VERIFICATION_LABEL = "_voicedock"  # the TXT record's name: _voicedock.<host>
VERIFICATION_PREFIX = "voicedock-verification="
# A logo's type, told by its first bytes (never by what a client or a file name says): only
# raster images, which a browser never runs as a document.
LOGO_TYPES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_LDH = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


class DomainKind(enum.StrEnum):
    CONSOLE = "console"  # the web console and the API, branded
    SIP = "sip"  # inbound calls whose Request-URI names it


class DomainStatus(enum.StrEnum):
    VERIFIED = "verified"
    PENDING = "pending"  # proposed by the organization, its TXT record not yet seen


class HostRefused(ValueError):
    """A host name that is no DNS name voicedock takes; the message says why."""


def normalize_host(text: str) -> str:
    """``text`` as a lower-case DNS name in its ASCII form (an internationalized name as its
    IDNA ``xn--`` labels); no port, no trailing dot, at least two labels, none numeric-only at
    the top (an IP address is no domain). ``HostRefused`` says why it is none."""
    given = text.strip().rstrip(".")
    if not given or len(given) > MAX_HOST_CHARS * 4:
        raise HostRefused("a host name is 1-253 characters")
    try:
        ascii_name = given.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise HostRefused(f"{text!r} is not a valid internationalized domain name") from exc
    labels = ascii_name.split(".")
    if len(ascii_name) > MAX_HOST_CHARS or len(labels) < 2:
        raise HostRefused(f"{text!r} is not a fully qualified domain name (name.tld)")
    for label in labels:
        if not 1 <= len(label) <= MAX_LABEL_CHARS or not set(label) <= _LDH:
            raise HostRefused(f"{text!r} has a label that is not letters, digits and '-'")
        if label.startswith("-") or label.endswith("-"):
            raise HostRefused(f"{text!r} has a label that starts or ends with '-'")
    if labels[-1].isdigit():
        raise HostRefused(f"{text!r} is an address, not a domain name")
    return ascii_name


def request_host(header: str) -> str | None:
    """The host a request's ``Host`` (or trusted ``X-Forwarded-Host``) header names, as
    ``normalize_host`` writes it, without its port; None when it names no domain (an
    address, an empty or malformed header)."""
    first = header.split(",", 1)[0].strip()
    if first.startswith("["):  # an IPv6 address
        return None
    name, _, port = first.rpartition(":") if ":" in first else (first, "", "")
    if port and not port.isdigit():
        return None
    try:
        return normalize_host(name)
    except HostRefused:
        return None


def new_verification_token() -> str:
    """What the domain's TXT record must hold to prove the organization controls it."""
    return VERIFICATION_PREFIX + secrets.token_urlsafe(24)


def verification_name(host: str) -> str:
    """The DNS name whose TXT record verifies ``host``."""
    return f"{VERIFICATION_LABEL}.{host}"


def logo_type(data: bytes) -> str | None:
    """The image type of a logo's bytes, or None when it is none voicedock serves."""
    return next((kind for magic, kind in LOGO_TYPES if data.startswith(magic)), None)


@dataclass(slots=True, kw_only=True)
class Domain:
    """A host name one organization holds (``/domains``)."""

    id: str
    organization_id: str
    host: str  # normalize_host's form
    kind: DomainKind = DomainKind.CONSOLE
    status: DomainStatus = DomainStatus.VERIFIED
    verification_token: str = field(default_factory=new_verification_token)
    created_at: datetime = field(default_factory=utcnow)
    verified_at: datetime | None = None


@dataclass(slots=True, kw_only=True)
class Branding:
    """What the console shows on an organization's console domains: its name and logo (the
    logo's bytes and type as ``logo_type`` told them; None: no logo)."""

    organization_id: str
    name: str
    logo: bytes | None = None
    logo_type: str | None = None
    updated_at: datetime = field(default_factory=utcnow)


__all__ = [
    "MAX_BRAND_NAME_CHARS",
    "MAX_DOMAINS_PER_ORGANIZATION",
    "MAX_LOGO_BYTES",
    "Branding",
    "Domain",
    "DomainKind",
    "DomainStatus",
    "HostRefused",
    "logo_type",
    "new_verification_token",
    "normalize_host",
    "request_host",
    "verification_name",
]
