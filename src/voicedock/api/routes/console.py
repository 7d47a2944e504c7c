"""The web console: its files under ``/console`` and its sign-in at ``/console/session``.

Signing in exchanges an API key for an opaque session cookie (``__Host-voicedock_session``:
``HttpOnly``, ``SameSite=Strict``, ``Secure``, ``Path=/``, no ``Domain``; ``[console]
secure_cookie = false`` drops the prefix and ``Secure`` for a console over plain http). Only
the cookie's sha256 is stored, beside the key it stands for, so revoking the key ends the
session at once; signing out ends the session's event streams too. The console's script then calls
the same REST API as any client, the cookie in place of the Bearer header (``EventSource``
included); every request that changes state also sends the session's CSRF token in
``X-CSRF-Token``, which a cross-site page cannot read. The files are served from the package,
with no build step and nothing fetched from elsewhere. On an organization's console domain
(``api/hosts.py``) the page shows the organization's branding (its name, its logo at
``/console/logo``) and the sign-in takes only the organization's keys (403 for another's).
"""

from __future__ import annotations

import html
import secrets
from datetime import timedelta
from importlib import resources

from aiohttp import web

from voicedock.api.app_keys import CONSOLE_PREFIX, SERVICE, session_cookie
from voicedock.api.audit import Actor
from voicedock.api.authentication import hash_key, session_key
from voicedock.api.body import read_json
from voicedock.api.hosts import host_owner, refuse_other_organizations
from voicedock.api.models.base import parse, reply
from voicedock.api.models.console import ConsoleSession as SessionReply
from voicedock.api.models.console import ConsoleSignIn
from voicedock.domain.domains import Branding
from voicedock.domain.records import ConsoleSession, utcnow
from voicedock.errors import NotFound, Unauthorized, UnsupportedMediaType
from voicedock.organizations.domains import console_branding

routes = web.RouteTableDef()

_FILES = {  # name -> content type: only these are served
    "index.html": "text/html; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; media-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


_PAGE_TITLE = "<title>voicedock console</title>"
_PAGE_BRAND = '<a href="#/calls" id="brand">voicedock</a>'
_LOGO = "logo"  # /console/logo: the branding's logo on an organization's console domain


def _file(name: str) -> web.Response:
    content_type = _FILES.get(name)
    if content_type is None:
        raise NotFound("no such console file")
    return web.Response(body=_read(name), headers={**_HEADERS, "Content-Type": content_type})


def _read(name: str) -> bytes:
    return resources.files("voicedock.api").joinpath("console", name).read_bytes()


def _branded_page(branding: Branding) -> web.Response:
    """The console's page with the organization's name (and logo) in place of voicedock's."""
    name = html.escape(branding.name)
    logo = '<img src="/console/logo" alt="">' if branding.logo is not None else ""
    page = _read("index.html").decode()
    page = page.replace(_PAGE_TITLE, f"<title>{name} console</title>", 1)
    page = page.replace(_PAGE_BRAND, f'<a href="#/calls" id="brand">{logo}{name}</a>', 1)
    headers = {**_HEADERS, "Content-Type": _FILES["index.html"]}
    return web.Response(body=page.encode(), headers=headers)


@routes.get(CONSOLE_PREFIX)
async def console_page(request: web.Request) -> web.Response:
    branding = await _branding(request)
    return _file("index.html") if branding is None else _branded_page(branding)


@routes.get(CONSOLE_PREFIX + "/{file}")
async def console_file(request: web.Request) -> web.Response:
    name = request.match_info["file"]
    if name == _LOGO:
        return await _logo(request)
    return _file(name)


async def _branding(request: web.Request) -> Branding | None:
    """The branding of the organization whose console domain the request's host is."""
    owner = await host_owner(request)
    return None if owner is None else await console_branding(request.app[SERVICE].store, owner)


async def _logo(request: web.Request) -> web.Response:
    """The logo of the organization whose console domain the request's host is (404 on any
    other host, or without one), of the type its bytes told when the operator set it."""
    branding = await _branding(request)
    if branding is None or branding.logo is None or branding.logo_type is None:
        raise NotFound("no such console file")
    headers = {**_HEADERS, "Content-Type": branding.logo_type}
    return web.Response(body=branding.logo, headers=headers)


@routes.post(CONSOLE_PREFIX + "/session")
async def sign_in(request: web.Request) -> web.Response:
    # JSON only: a cross-site HTML form cannot send it without the browser asking first.
    if request.content_type != "application/json":
        raise UnsupportedMediaType("send the API key as a JSON body (application/json)")
    service = request.app[SERVICE]
    body = await read_json(request, service.settings.server.max_body_bytes)
    secret = parse(body, ConsoleSignIn).api_key
    store = service.store
    key = await store.find_api_key(hash_key(secret.strip()))
    if key is None or key.revoked_at is not None:
        raise Unauthorized("the API key is not valid")
    await refuse_other_organizations(request, key.organization_id)
    now = utcnow()
    token = secrets.token_urlsafe(32)
    session = ConsoleSession(
        token_hash=hash_key(token),
        api_key_id=key.id,
        organization_id=key.organization_id,
        csrf_token=secrets.token_urlsafe(32),
        expires_at=now + timedelta(hours=service.settings.console.session_hours),
        created_at=now,
    )
    signed_in = Actor.of(request, key, session.token_hash)
    async with store.transaction() as tx:
        await tx.purge_console_sessions(now)
        await tx.insert_console_session(session)
        event = signed_in.event("console.signed_in", "console_session", signed_in.console_session)
        await tx.insert_audit_event(event)
    response = reply(SessionReply.of(session, key))
    response.set_cookie(
        session_cookie(request),
        token,
        max_age=service.settings.console.session_hours * 3600,
        path="/",  # no Domain: "__Host-" cookies belong to this host only
        httponly=True,
        samesite="Strict",
        secure=service.settings.console.secure_cookie,
    )
    return response


@routes.get(CONSOLE_PREFIX + "/session")
async def current_session(request: web.Request) -> web.Response:
    cookie = request.cookies.get(session_cookie(request))
    if cookie is None:
        raise Unauthorized("not signed in")
    key = await session_key(request)
    session = await request.app[SERVICE].store.find_console_session(hash_key(cookie))
    if session is None:
        raise Unauthorized("not signed in")
    return reply(SessionReply.of(session, key))


@routes.delete(CONSOLE_PREFIX + "/session")
async def sign_out(request: web.Request) -> web.Response:
    name = session_cookie(request)
    cookie = request.cookies.get(name)
    if cookie is None:
        raise Unauthorized("not signed in")
    await session_key(request)  # the CSRF token too: a cross-site page cannot sign you out
    # The session's open event streams see it gone within KEY_CHECK_SECONDS and end.
    async with request.app[SERVICE].store.transaction() as tx:
        await tx.delete_console_session(hash_key(cookie))
    response = web.Response(status=204)
    secure = request.app[SERVICE].settings.console.secure_cookie
    response.del_cookie(name, path="/", secure=secure, httponly=True, samesite="Strict")
    return response
