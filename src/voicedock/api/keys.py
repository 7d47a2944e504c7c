"""Typed keys for what the web app and each request carry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from voicedock.service import Service

SERVICE: web.AppKey[Service] = web.AppKey("service")
# Set by the auth middleware on every authenticated request.
ORGANIZATION_ID: web.RequestKey[str] = web.RequestKey("organization_id", str)
API_KEY_ID: web.RequestKey[str] = web.RequestKey("api_key_id", str)
MEDIA_PATH = "/media"  # client media mode; authenticated by the call it must name
PUBLIC_PATHS = frozenset({"/health", "/openapi.json", MEDIA_PATH})
