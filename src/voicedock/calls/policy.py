"""The destination policy for outbound calls and transfers (toll-fraud protection).

External destinations are E.164 numbers only (``+`` and 7–15 digits, the same strict check as
outbound calls). A number must start with one of ``policy.allowed_prefixes`` and with none of
``policy.blocked_prefixes`` (by default the premium-rate and international-network ranges of
``config.DEFAULT_BLOCKED_PREFIXES``). Blocked wins over allowed.

Internal transfer targets are named, never numbers, in one of three forms:

* ``sales``, ``agent-12``, ``1001``   an extension in the PBX's transfers context (a name
  made only of digits has at most 6: longer digit strings are phone numbers, and those must
  be E.164 and pass the number ranges)
* ``queue:support``               a call queue
* ``sip:alice@pbx.example.com``   a SIP URI (reached through the PBX's internal trunk)

A destination is internal only when it matches one of ``policy.internal_targets``: shell-style
glob patterns (``*``, ``?``, ``[...]``) matched case-sensitively against the whole destination,
e.g. ``sales``, ``agent-*``, ``queue:*``, ``sip:*@pbx.example.com``. Before matching, the
destination must have the strict shape of its form, so a pattern such as ``sip:*`` can never
let a separator or a control character through to a dial string.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from voicedock.config import PolicySettings
from voicedock.errors import BadRequest, Forbidden
from voicedock.validation import is_e164, is_token, mask_number

REFUSED_ERROR = "Destination not allowed"

_MAX_EXTENSION_DIGITS = 6
_QUEUE = re.compile(r"queue:[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_SIP_URI = re.compile(
    r"sip:[A-Za-z0-9][A-Za-z0-9_.+\-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}\.){0,8}"
    r"[A-Za-z0-9\-]{1,63}"
)


@dataclass(frozen=True, slots=True)
class Destination:
    """A transfer destination that passed the policy."""

    value: str
    internal: bool


class DestinationRefused(Forbidden):
    """403: the policy refuses the destination. ``reason`` is safe to log and store."""

    error = REFUSED_ERROR

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_destination(number: str, policy: PolicySettings) -> None:
    """Raise 403 unless ``number`` (already E.164) is allowed and not blocked."""
    if any(number.startswith(prefix) for prefix in policy.blocked_prefixes):
        raise DestinationRefused("destination is in a blocked number range", "blocked-prefix")
    if not any(number.startswith(prefix) for prefix in policy.allowed_prefixes):
        raise DestinationRefused(
            "destination is outside the allowed number ranges", "prefix-not-allowed"
        )


def has_internal_form(name: str) -> bool:
    """A well-formed internal target name (extension, ``queue:`` or ``sip:`` URI)."""
    if is_e164(name) or (name.isascii() and name.isdigit() and len(name) > _MAX_EXTENSION_DIGITS):
        return False
    return (
        is_token(name) or _QUEUE.fullmatch(name) is not None or _SIP_URI.fullmatch(name) is not None
    )


def is_internal_target(name: str, policy: PolicySettings) -> bool:
    """A transfer target configured by the operator (glob patterns), never an E.164 number."""
    return has_internal_form(name) and any(
        fnmatch.fnmatchcase(name, pattern) for pattern in policy.internal_targets
    )


def check_transfer_destination(destination: str, policy: PolicySettings) -> Destination:
    """The policy's verdict on a transfer destination.

    400 for a malformed destination (neither strict E.164 nor an internal-target form), 403
    (``DestinationRefused``) for a well-formed one the policy does not allow.
    """
    if is_e164(destination):
        check_destination(destination, policy)
        return Destination(destination, internal=False)
    if not has_internal_form(destination):
        raise BadRequest(
            "destination must be an E.164 number or a configured internal target",
            error="Invalid destination format",
        )
    if not is_internal_target(destination, policy):
        raise DestinationRefused(
            "destination is not a configured internal transfer target", "internal-not-allowed"
        )
    return Destination(destination, internal=True)


def loggable(destination: str) -> str:
    """The destination as it may appear in logs and security events (numbers masked)."""
    if destination.startswith("+"):
        return mask_number(destination)
    return destination.split("@", 1)[0] + ("@…" if "@" in destination else "")
