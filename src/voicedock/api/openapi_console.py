"""The OpenAPI description of the web console's session and files, ``/metrics``."""

from __future__ import annotations

from voicedock.api.api_keys import MAX_NAME
from voicedock.api.openapi_schema import TIME, Schema, obj, operation, ref, text

_NAME: Schema = text(MAX_NAME, line=True)

CONSOLE_SCHEMAS: dict[str, Schema] = {
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

_FILE = {"name": "file", "in": "path", "required": True, "schema": {"type": "string"}}

CONSOLE_PATHS: dict[str, Schema] = {
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
