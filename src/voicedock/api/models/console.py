"""The web console: its session (sign in with an API key, the session's CSRF token, sign out)
and its files."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from voicedock.api.models.api_keys import ApiKey
from voicedock.api.models.base import Body, Reply
from voicedock.api.models.field_types import Time, text
from voicedock.api.models.operations import Schema, operation
from voicedock.domain.records import ApiKey as ApiKeyRecord
from voicedock.domain.records import ConsoleSession as SessionRecord
from voicedock.domain.timestamps import iso


class ConsoleSignIn(Body, kw_only=True):
    api_key: Annotated[str, text(300, line=True)]


class ConsoleSession(Reply, kw_only=True):
    organization_id: str
    key: ApiKey
    csrf_token: Annotated[
        str, Meta(description="Send as X-CSRF-Token on every request that changes state.")
    ]
    expires_at: Time

    @classmethod
    def of(cls, session: SessionRecord, key: ApiKeyRecord) -> ConsoleSession:
        return cls(
            organization_id=session.organization_id,
            key=ApiKey.of(key),
            csrf_token=session.csrf_token,
            expires_at=iso(session.expires_at),
        )


_FILE = {"name": "file", "in": "path", "required": True, "schema": {"type": "string"}}

PATHS: dict[str, Schema] = {
    "/console/session": {
        "post": operation(
            "Sign in to the web console: exchanges an API key for a session cookie "
            "(__Host-voicedock_session: HttpOnly, SameSite=Strict, Secure, Path=/, no Domain; "
            "voicedock_session without Secure when [console] secure_cookie = false) scoped to "
            "the key's organization (the API accepts it in place of the Bearer header).",
            ("200", ConsoleSession),
            body=ConsoleSignIn,
            errors="400 401 413",
            public=True,
        ),
        "get": operation(
            "The console session of the cookie sent (its CSRF token).",
            ("200", ConsoleSession),
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
MODELS = (ConsoleSignIn, ConsoleSession)
