"""The host a request arrived on, and the organization whose verified console domain it is.

A request's host is its ``Host`` header, or its ``X-Forwarded-Host`` where the operator says
a reverse proxy sets it (``[domains] trust_forwarded_host``). On an organization's console
domain the console shows that organization's branding, and only its keys are taken
(``refuse_other_organizations``: 403 for any other's, through the API and at the console's
sign-in); any other host is the operator's, as if no organization had a domain.
"""

from __future__ import annotations

from aiohttp import hdrs, web

from voicedock.api.app_keys import SERVICE
from voicedock.domain.domains import request_host
from voicedock.errors import Forbidden
from voicedock.organizations.domains import HostOwner, console_host_owner

_OWNER: web.RequestKey[HostOwner | None] = web.RequestKey("host_owner")


def host_of(request: web.Request) -> str | None:
    """The domain name the request was sent to (None: an address, or no usable header)."""
    service = request.app[SERVICE]
    header = request.headers.get(hdrs.HOST, "")
    if service.settings.domains.trust_forwarded_host:
        header = request.headers.get(hdrs.X_FORWARDED_HOST, header)
    return request_host(header)


async def host_owner(request: web.Request) -> HostOwner | None:
    """The organization whose verified console domain the request's host is (looked up once
    per request); None: the operator's host."""
    if _OWNER in request:
        return request[_OWNER]
    owner = await console_host_owner(request.app[SERVICE].store, host_of(request))
    request[_OWNER] = owner
    return owner


async def refuse_other_organizations(request: web.Request, organization_id: str) -> None:
    """403 when the request arrived on another organization's console domain than
    ``organization_id``'s (the organization of the key it carries)."""
    owner = await host_owner(request)
    if owner is not None and owner.organization_id != organization_id:
        raise Forbidden(f"this API key is not valid on {owner.host}")


__all__ = ["host_of", "host_owner", "refuse_other_organizations"]
