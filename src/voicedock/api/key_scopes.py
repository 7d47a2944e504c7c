"""What an API key may do: its scope and its grants.

A read-only key may only read (GET, HEAD); a path a resource scopes (``SCOPED_PATHS``, e.g.
``/api-keys``: admin keys only) needs a key of that scope or above; only an admin key changes
the organization. Hearing a live call needs the key's listen grant besides (``check_listen``).
``api/authentication.py`` checks the scope of every request once it knows its key.
"""

from __future__ import annotations

from voicedock.domain.records import ApiKey, KeyScope
from voicedock.errors import Forbidden

READ_METHODS = frozenset({"GET", "HEAD"})
_RANK = {KeyScope.READ_ONLY: 0, KeyScope.FULL: 1, KeyScope.ADMIN: 2}
ORGANIZATION_PATH = "/organization"  # any key reads it; changing it needs an admin key


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


def check_listen(key: ApiKey) -> None:
    """403 unless ``key`` holds the live-listen grant (``ApiKey.listen``)."""
    if not key.listen:
        raise Forbidden(
            "this API key may not listen to live calls; the operator grants it "
            "(voicedock keys allow-listen <key id>)"
        )
