"""Toll-fraud policy for external destinations (outbound calls and transfers alike)."""

from __future__ import annotations

import fnmatch

from voicedock.config import PolicySettings
from voicedock.errors import Forbidden
from voicedock.validation import is_e164, is_token


def check_destination(number: str, policy: PolicySettings) -> None:
    """Raise 403 unless ``number`` (already E.164) is allowed and not blocked."""
    if any(number.startswith(prefix) for prefix in policy.blocked_prefixes):
        raise Forbidden("destination is in a blocked number range", error="Destination not allowed")
    if not any(number.startswith(prefix) for prefix in policy.allowed_prefixes):
        raise Forbidden(
            "destination is outside the allowed number ranges", error="Destination not allowed"
        )


def is_internal_target(name: str, policy: PolicySettings) -> bool:
    """A transfer target configured by the operator (glob patterns), never an E.164 number."""
    return (
        not is_e164(name)
        and is_token(name)
        and any(fnmatch.fnmatchcase(name, pattern) for pattern in policy.internal_targets)
    )
