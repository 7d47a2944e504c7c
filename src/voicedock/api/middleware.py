"""Every response that is not a success is ``{"error": ..., "message": ...}``; auth by key.

``errors`` turns ``ApiError``s, aiohttp's own HTTP exceptions (unknown path 404, wrong method
405, body too large 413), a store that is unavailable for now (503 with ``Retry-After``: another
process holds the SQLite file, a PostgreSQL failover) and unexpected exceptions (500, no
traceback in the body) into that shape. ``authenticate`` checks ``Authorization: Bearer <key>``
against the stored sha256 hashes (or a web console session cookie, whose state-changing requests
must also carry the session's CSRF token) and binds the key and its organization to the request;
it enforces the key's scope: a read-only key may only read (GET), and only an admin key manages
API keys. Hearing a live call needs the key's listen grant besides (``check_listen``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
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
from voicedock.domain.records import ApiKey, KeyScope, utcnow
from voicedock.errors import ApiError, Forbidden, StoreUnavailable, Unauthorized
from voicedock.store.errors import DuplicateKeyError

log = logging.getLogger("voicedock.api")

_BEARER = re.compile(r"Bearer ([A-Za-z0-9_\-.~+/]{16,200}=*)")
_HTTP_ERRORS = {
    400: "Bad request",
    401: "Invalid API key",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable entity",
    429: "Too many requests",
}


def error_response(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return web.json_response(exc.body(), status=exc.status, headers=exc.headers())
    except StoreUnavailable as exc:
        log.warning("%s answered 503: store unavailable: %s", request.method, exc)
        response = error_response(
            503, "Service unavailable", "the database is busy or unreachable; retry shortly"
        )
        response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response
    except DuplicateKeyError:
        # A unique constraint caught what a check-then-insert race let through.
        return error_response(409, "Conflict", "the resource already exists")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status = exc.status if exc.status in _HTTP_ERRORS or exc.status >= 500 else 400
        error = _HTTP_ERRORS.get(status, "Internal error")
        response = error_response(status, error, exc.reason)
        if status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(500, "Internal error", "an unexpected error occurred")


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


READ_METHODS = frozenset({"GET", "HEAD"})
_RANK = {KeyScope.READ_ONLY: 0, KeyScope.FULL: 1, KeyScope.ADMIN: 2}
ORGANIZATION_PATH = "/organization"  # any key reads it; changing it needs an admin key


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


def check_scope(
    key: ApiKey, method: str, path: str, scoped: dict[str, tuple[KeyScope, str]]
) -> None:
    """A read-only key only reads; a path a resource scopes (and every path below it) needs a
    key of that scope or above."""
    if key.scope is KeyScope.READ_ONLY and method not in READ_METHODS:
        raise Forbidden("this API key is read-only")
    for prefix, (scope, refusal) in scoped.items():
        below = path == prefix or path.startswith(prefix + "/")
        if below and _RANK[key.scope] < _RANK[scope]:
            raise Forbidden(refusal)
    if path == ORGANIZATION_PATH and method not in READ_METHODS and key.scope is not KeyScope.ADMIN:
        raise Forbidden("changing the organization needs an admin API key")


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


def check_listen(key: ApiKey) -> None:
    """403 unless ``key`` holds the live-listen grant (``ApiKey.listen``)."""
    if not key.listen:
        raise Forbidden(
            "this API key may not listen to live calls; the operator grants it "
            "(voicedock keys allow-listen <key id>)"
        )


def organization_of(request: web.Request) -> str:
    return request[ORGANIZATION_ID]
