"""The OpenAPI description of ``/api-keys``, the web console's session and files, ``/metrics``."""

from __future__ import annotations

from voicedock.api.api_keys import MAX_NAME
from voicedock.api.openapi_schema import PATH_ID, TIME, Schema, nullable, obj, operation, ref, text
from voicedock.domain.records import KeyScope

_SCOPE: Schema = {
    "enum": [s.value for s in KeyScope],
    "description": "read_only: GET only (anything else is 403); full: the whole API; "
    "admin: also manages the organization's API keys.",
}
_KEY_PROPS: dict[str, Schema] = {
    "id": {"type": "string"},
    "name": {"type": "string"},
    "scope": _SCOPE,
    "created_at": TIME,
    "revoked_at": TIME,
}
_NAME: Schema = text(MAX_NAME, line=True)

CONSOLE_SCHEMAS: dict[str, Schema] = {
    "ApiKey": obj(_KEY_PROPS, tuple(_KEY_PROPS), strict=False),
    "ApiKeyCreated": obj(
        {
            **_KEY_PROPS,
            "key": {"type": "string", "description": "vd_...: shown only in this response"},
        },
        (*_KEY_PROPS, "key"),
        strict=False,
    ),
    "ApiKeyCreate": obj({"name": nullable(_NAME), "scope": nullable(_SCOPE)}),
    "ApiKeyUpdate": obj({"name": _NAME}, ("name",)),
    "ApiKeyList": obj(
        {"api_keys": {"type": "array", "items": ref("ApiKey")}}, ("api_keys",), strict=False
    ),
    "ConsoleSignIn": obj({"api_key": text(300, line=True)}, ("api_key",)),
    "ConsoleSession": obj(
        {
            "organization_id": {"type": "string"},
            "key": ref("ApiKey"),
            "csrf_token": {
                "type": "string",
                "description": "Send as X-CSRF-Token on every request that changes state.",
            },
            "expires_at": TIME,
        },
        ("organization_id", "key", "csrf_token", "expires_at"),
        strict=False,
    ),
}

_ADMIN = " Needs an admin key (403 otherwise)."
_KEY_ERRORS = "401 403 404"
_FILE = {"name": "file", "in": "path", "required": True, "schema": {"type": "string"}}

CONSOLE_PATHS: dict[str, Schema] = {
    "/api-keys": {
        "get": operation(
            "List the organization's API keys (never their secrets)." + _ADMIN,
            ("200", "ApiKeyList"),
            errors="401 403",
        ),
        "post": operation(
            "Create an API key; the secret is in this answer only." + _ADMIN,
            ("201", "ApiKeyCreated"),
            body="ApiKeyCreate",
            errors="400 401 403 413",
        ),
    },
    "/api-keys/{id}": {
        "get": operation(
            "Get an API key." + _ADMIN, ("200", "ApiKey"), params=[PATH_ID], errors=_KEY_ERRORS
        ),
        "patch": operation(
            "Rename an API key." + _ADMIN,
            ("200", "ApiKey"),
            body="ApiKeyUpdate",
            params=[PATH_ID],
            errors="400 401 403 404 413",
        ),
        "delete": operation(
            "Revoke an API key now: its requests, open event streams and console sessions "
            "end. It stays listed with revoked_at." + _ADMIN,
            ("200", "ApiKey"),
            params=[PATH_ID],
            errors=_KEY_ERRORS,
        ),
    },
    "/metrics": {
        "get": operation(
            "Prometheus metrics (text exposition format). Authenticated with the [metrics] "
            "bearer_token of the configuration, not an API key; 404 when none is configured.",
            ("200", None),
            errors="401 404",
            public=True,
        )
    },
    "/console/session": {
        "post": operation(
            "Sign in to the web console: exchanges an API key for a session cookie "
            "(__Host-voicedock_session: HttpOnly, SameSite=Strict, Secure, Path=/, no Domain; "
            "voicedock_session without Secure when [console] secure_cookie = false) scoped to "
            "the key's organization (the API accepts it in place of the Bearer header).",
            ("200", "ConsoleSession"),
            body="ConsoleSignIn",
            errors="400 401 413",
            public=True,
        ),
        "get": operation(
            "The console session of the cookie sent (its CSRF token).",
            ("200", "ConsoleSession"),
            errors="401",
            public=True,
        ),
        "delete": operation(
            "Sign out (needs X-CSRF-Token); the session's open event streams end too.",
            ("204", None),
            errors="401 403",
            public=True,
        ),
    },
    "/console": {"get": operation("The web console (HTML)", ("200", None), errors="", public=True)},
    "/console/{file}": {
        "get": operation(
            "The web console's scripts and styles",
            ("200", None),
            params=[_FILE],
            errors="404",
            public=True,
        )
    },
}
