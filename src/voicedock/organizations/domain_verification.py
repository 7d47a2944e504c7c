"""Verifying a domain an organization proposed: its TXT record ``_voicedock.<host>`` must hold
the domain's verification token.

Only the operator's resolver is asked (``[domains] resolver``/``resolver_port``, else the
system's): nothing a tenant sends names a server, and what comes back is only compared with
the token, never followed.
"""

from __future__ import annotations

import dns.asyncresolver
import dns.exception
import dns.resolver

from voicedock.config import DomainsSettings
from voicedock.domain.domains import Domain, verification_name

LOOKUP_SECONDS = 5.0  # the whole lookup, retries included
MAX_TXT_RECORDS = 20  # records of the name compared with the token; any more are ignored


async def txt_holds_token(settings: DomainsSettings, domain: Domain) -> bool:
    """Whether ``_voicedock.<host>`` has a TXT record that is the domain's token (its strings
    joined, as RFC 7208 reads a long record); False when the name has none or the lookup
    failed."""
    if settings.resolver:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [settings.resolver]
        resolver.port = settings.resolver_port
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = LOOKUP_SECONDS
    try:
        answer = await resolver.resolve(verification_name(domain.host), "TXT")
    except (dns.exception.DNSException, OSError):
        return False
    for i, record in enumerate(answer):
        if i >= MAX_TXT_RECORDS:
            break
        strings = getattr(record, "strings", ())
        if b"".join(strings).decode("ascii", "replace") == domain.verification_token:
            return True
    return False


__all__ = ["LOOKUP_SECONDS", "txt_holds_token"]
