"""Who is calling: the API key behind a request.

``authenticate`` checks ``Authorization: Bearer <key>`` against the stored sha256 hashes (or a
web console session cookie, whose state-changing requests must also carry the session's CSRF
token), refuses a key of another organization on an organization's console domain
(``api/hosts.py``), checks the key's scope (``api/key_scopes.py``) and binds the key and its
organization to the request. Long-lived responses (event streams, live listen) ask again
whether the key still holds (``credentials_still_valid``, ``current_key``).
"""

from __future__ import annotations

import hashlib
import hmac
import re

from aiohttp import web
from aiohttp.typedefs import Handler

from voicedock.api.app_keys import (
    API_KEY,
    CONSOLE_PREFIX,
    CONSOLE_SESSION,
    CSRF_HEADER,
    ORGANIZATION_ID,
    PUBLIC_PATHS,
    SCOPED_PATHS,
    SERVICE,
    session_cookie,
)
from voicedock.api.hosts import refuse_other_organizations
from voicedock.api.key_scopes import READ_METHODS, check_scope
from voicedock.domain.records import ApiKey, utcnow
from voicedock.errors import Forbidden, Unauthorized

_BEARER = re.compile(r"Bearer ([A-Za-z0-9_\-.~+/]{16,200}=*)")


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def sends_metrics_token(request: web.Request) -> bool:
    """The request carries ``[metrics] bearer_token`` (the operator's monitoring: not an API
    key) as ``Authorization: Bearer <token>``; never without one configured."""
    token = request.app[SERVICE].settings.metrics.bearer_token
    sent = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_public(request.path):
        return await handler(request)
    authorization = request.headers.get("Authorization")
    cookie = request.cookies.get(session_cookie(request))
    if authorization is None and cookie is not None:
        key = await session_key(request)
        request[CONSOLE_SESSION] = hash_key(cookie)
    else:
        match = _BEARER.fullmatch(authorization or "")
        if match is None:
            raise Unauthorized("send the API key as 'Authorization: Bearer <key>'")
        found = await request.app[SERVICE].store.find_api_key(hash_key(match.group(1)))
        if found is None or found.revoked_at is not None:
            raise Unauthorized("the API key is not valid")
        key = found
    await refuse_other_organizations(request, key.organization_id)
    check_scope(key, request.method, request.path, request.app.get(SCOPED_PATHS, {}))
    request[ORGANIZATION_ID] = key.organization_id
    request[API_KEY] = key
    return await handler(request)


async def session_key(request: web.Request) -> ApiKey:
    """The live key behind the request's console session cookie; state-changing requests
    must repeat the session's CSRF token in ``X-CSRF-Token`` (a cross-site form cannot)."""
    store = request.app[SERVICE].store
    cookie = request.cookies.get(session_cookie(request), "")
    session = await store.find_console_session(hash_key(cookie))
    if session is None or session.expires_at <= utcnow():
        raise Unauthorized("the console session has ended; sign in again")
    if request.method not in READ_METHODS and not hmac.compare_digest(
        request.headers.get(CSRF_HEADER, ""), session.csrf_token
    ):
        raise Forbidden(f"a console request that changes state must send {CSRF_HEADER}")
    key = await store.get_api_key(session.organization_id, session.api_key_id)
    if key is None or key.revoked_at is not None:
        raise Unauthorized("the API key of this console session is not valid")
    return key


async def credentials_still_valid(request: web.Request) -> bool:
    """Whether the request's key is still unrevoked and, when it came through a console
    session, that session is still signed in (long-lived responses ask again)."""
    return request.get(API_KEY) is None or await current_key(request) is not None


async def current_key(request: web.Request) -> ApiKey | None:
    """The request's key as it is now (a grant may have changed since the request began);
    None once it is revoked or its console session has signed out."""
    key = request.get(API_KEY)
    if key is None:
        return None
    store = request.app[SERVICE].store
    session_hash = request.get(CONSOLE_SESSION)
    if session_hash is not None:
        session = await store.find_console_session(session_hash)
        if session is None or session.expires_at <= utcnow():
            return None
    current = await store.get_api_key(key.organization_id, key.id)
    return current if current is not None and current.revoked_at is None else None


def organization_of(request: web.Request) -> str:
    return request[ORGANIZATION_ID]
