"""Typed keys for what the web app and each request carry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from voicedock.domain.records import ApiKey

if TYPE_CHECKING:
    from voicedock.service import Service

SERVICE: web.AppKey[Service] = web.AppKey("service")
# Set by the auth middleware on every authenticated request.
ORGANIZATION_ID: web.RequestKey[str] = web.RequestKey("organization_id", str)
# The key the request was authenticated with (directly, or through a console session).
API_KEY: web.RequestKey[ApiKey] = web.RequestKey("api_key", ApiKey)
MEDIA_PATH = "/media"  # client media mode; authenticated by the call it must name
METRICS_PATH = "/metrics"  # authenticated by its own bearer token ([metrics] bearer_token)
PUBLIC_PATHS = frozenset({"/health", "/openapi.json", MEDIA_PATH, METRICS_PATH})
# The web console's pages and its sign-in: the console checks its own session cookie.
CONSOLE_PREFIX = "/console"
SESSION_COOKIE = "voicedock_session"
CSRF_HEADER = "X-CSRF-Token"
