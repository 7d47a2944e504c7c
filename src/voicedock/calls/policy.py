"""The destination policy for outbound calls, transfers and campaign contacts (toll-fraud
protection).

External destinations are E.164 numbers only (``+`` and 7-15 digits, the same strict check as
outbound calls), and must be numbers that can exist: libphonenumber's numbering plans
(``domain/number_plan.py``) know their length and assigned ranges, so ``+90 0901…`` or a digit
too many is ``400 Invalid destination format`` before anything reaches the PBX. A valid number
is then refused (``403 Destination not allowed``, with a ``reason``) when:

* it starts with one of ``config.BUILT_IN_BLOCKED_PREFIXES`` (satellite, international
  networks and premium services: always) or of ``policy.extra_blocked_prefixes``
  (``blocked-prefix``);
* its type is one of ``policy.refused_number_types`` (by default premium rate, shared cost and
  personal numbers: ``refused-number-type``);
* its country is not one of ``policy.allowed_countries`` (``country-not-allowed``). The
  country is the number's own: ``+1 876…`` is Jamaica, which allowing ``US`` does not allow.

Internal transfer targets are named, never numbers, in one of three forms:

* ``sales``, ``agent-12``, ``1001``   an extension in the PBX's transfers context (a name
  made only of digits has at most 6: longer digit strings are phone numbers, and those must
  be E.164 and pass the policy above)
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

from voicedock.config import BUILT_IN_BLOCKED_PREFIXES, EVERY_COUNTRY, PolicySettings
from voicedock.domain.number_plan import GLOBAL, classify
from voicedock.errors import BadRequest, Forbidden
from voicedock.validation import is_e164, is_token, mask_number, mask_numbers

REFUSED_ERROR = "Destination not allowed"
INVALID_ERROR = "Invalid destination format"

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


class DestinationRefused(Forbidden, error=REFUSED_ERROR):
    """403: the policy refuses the destination. ``reason`` is safe to log and store."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_destination(number: str, policy: PolicySettings) -> None:
    """400 unless ``number`` (already E.164) can exist, 403 unless the policy allows it."""
    info = classify(number)
    if info is None:
        raise BadRequest(
            "destination is not a valid phone number: wrong length for its country, or a "
            "range that is not in use",
            error=INVALID_ERROR,
        )
    if number.startswith(BUILT_IN_BLOCKED_PREFIXES) or number.startswith(
        tuple(policy.extra_blocked_prefixes)
    ):
        raise DestinationRefused("destination is in a blocked number range", "blocked-prefix")
    if info.type in policy.refused_number_types:
        shown = info.type.replace("_", " ")
        raise DestinationRefused(
            f"destination is a {shown} number, which this service does not call",
            "refused-number-type",
        )
    allowed = policy.allowed_countries
    if EVERY_COUNTRY not in allowed and info.region not in allowed:
        where = "a global service" if info.region == GLOBAL else f"country {info.region}"
        raise DestinationRefused(
            f"destination is a number of {where}, which this service does not call",
            "country-not-allowed",
        )


def destination_refusal(number: str, policy: PolicySettings) -> str | None:
    """Why the policy, as configured now, refuses ``number`` asked for earlier (a campaign's
    contact, a scheduled call) now that it is dialed: the refusal's ``reason``
    (``invalid-number`` for a range no longer in use), or ``None``: it may be called."""
    try:
        check_destination(number, policy)
    except DestinationRefused as refused:
        return refused.reason
    except BadRequest:
        return "invalid-number"
    return None


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

    400 for a malformed destination (neither strict E.164 nor an internal-target form) or a
    number that cannot exist, 403
    (``DestinationRefused``) for a well-formed one the policy does not allow.
    """
    if is_e164(destination):
        check_destination(destination, policy)
        return Destination(destination, internal=False)
    if not has_internal_form(destination):
        raise BadRequest(
            "destination must be an E.164 number or a configured internal target",
            error=INVALID_ERROR,
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
    return mask_numbers(destination.split("@", 1)[0]) + ("@…" if "@" in destination else "")
