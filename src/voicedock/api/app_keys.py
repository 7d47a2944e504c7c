"""Typed keys for what the web app and each request carry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from voicedock.domain.records import ApiKey, KeyScope

if TYPE_CHECKING:
    from voicedock.service import Service

SERVICE: web.AppKey[Service] = web.AppKey("service")
# Paths (and every path below them) that need a key scope beyond the read-only rule, with the
# refusal's message: made from the resources' declarations (api/resources.py).
SCOPED_PATHS: web.AppKey[dict[str, tuple[KeyScope, str]]] = web.AppKey("scoped_paths", dict)
# Set by the auth middleware on every authenticated request.
ORGANIZATION_ID: web.RequestKey[str] = web.RequestKey("organization_id", str)
# The key the request was authenticated with (directly, or through a console session).
API_KEY: web.RequestKey[ApiKey] = web.RequestKey("api_key", ApiKey)
# The sha256 of the console session cookie a request was authenticated with (if it was).
CONSOLE_SESSION: web.RequestKey[str] = web.RequestKey("console_session", str)
MEDIA_PATH = "/media"  # client media mode; authenticated by the call it must name
METRICS_PATH = "/metrics"  # authenticated by its own bearer token ([metrics] bearer_token)
PUBLIC_PATHS = frozenset({"/health", "/openapi.json", MEDIA_PATH, METRICS_PATH})
# The web console's pages and its sign-in: the console checks its own session cookie.
CONSOLE_PREFIX = "/console"
# The console's session cookie: "__Host-" (only ever set by this host, over https, for Path=/)
# unless the operator turned ``[console] secure_cookie`` off for a console over plain http.
SESSION_COOKIE = "__Host-voicedock_session"
PLAIN_SESSION_COOKIE = "voicedock_session"


def session_cookie(request: web.Request) -> str:
    """The name of the console's session cookie on this node."""
    secure = request.app[SERVICE].settings.console.secure_cookie
    return SESSION_COOKIE if secure else PLAIN_SESSION_COOKIE


CSRF_HEADER = "X-CSRF-Token"
