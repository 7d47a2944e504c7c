"""Caller ID attestation of an inbound call (STIR/SHAKEN), as the PBX received it.

``caller_attestation`` reads two SIP headers the carrier may send: ``Identity`` (RFC 8224), a
PASSporT (RFC 8225, SHAKEN extension RFC 8588) whose payload's ``attest`` claim says A, B or C,
and the ``verstat`` parameter (3GPP TS 24.229) of ``P-Asserted-Identity`` or ``From``: the
carrier's own verification result. Both are read as text, bounded and checked strictly
(anything else reads as absent); the PASSporT's signature is NOT verified: this is what the
carrier asserted, not a proof (docs/compliance.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from typing import Literal

import msgspec

Attest = Literal["A", "B", "C"]
Verstat = Literal["TN-Validation-Passed", "TN-Validation-Failed", "No-TN-Validation"]
ATTESTS: tuple[Attest, ...] = ("A", "B", "C")
VERSTATS: tuple[Verstat, ...] = ("TN-Validation-Passed", "TN-Validation-Failed", "No-TN-Validation")
MAX_HEADER = 4096  # characters of a header read; a longer one is not read
_TOKEN = re.compile(r"[A-Za-z0-9_-]*")
_VERSTAT = re.compile(r";\s*verstat\s*=\s*([A-Za-z-]{1,32})\s*(?:[;>]|$)", re.IGNORECASE)


class CallerAttestation(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What the carrier asserted about the caller's number (``Call.caller_attestation``)."""

    attest: Attest | None = None  # the Identity PASSporT's ``attest`` claim
    origid: str | None = None  # the PASSporT's origination id (a UUID)
    verstat: Verstat | None = None  # the carrier's verification result


def caller_attestation(
    identity: str | None, asserted: str | None = None, sent_from: str | None = None
) -> CallerAttestation | None:
    """The attestation in an INVITE's ``Identity``, ``P-Asserted-Identity`` and ``From``
    header values (None: the header was absent); None when none holds one."""
    attest, origid = _passport(identity)
    verstat = _verstat(asserted) or _verstat(sent_from)
    if attest is None and verstat is None:
        return None
    return CallerAttestation(attest=attest, origid=origid, verstat=verstat)


def _passport(identity: str | None) -> tuple[Attest | None, str | None]:
    """``attest`` and ``origid`` of an ``Identity`` header's full-form PASSporT
    (``header.payload.signature;info=<...>;alg=ES256;ppt=shaken``)."""
    if not identity or len(identity) > MAX_HEADER:
        return None, None
    token = identity.split(";", 1)[0].strip()
    parts = token.split(".")
    if len(parts) != 3 or not all(_TOKEN.fullmatch(p) for p in parts) or not parts[1]:
        return None, None  # a compact form (no payload) asserts nothing we can read
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None, None
    if not isinstance(payload, dict):
        return None, None
    attest = payload.get("attest")
    if attest not in ATTESTS:
        return None, None
    origid = payload.get("origid")
    return attest, _uuid(origid)


def _uuid(value: object) -> str | None:
    if not isinstance(value, str) or len(value) > 36:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _verstat(header: str | None) -> Verstat | None:
    """The ``verstat`` parameter of a name-addr header (``<tel:+1...;verstat=...>``)."""
    if not header or len(header) > MAX_HEADER:
        return None
    found = _VERSTAT.search(header)
    if found is None:
        return None
    value = found.group(1).casefold()
    return next((v for v in VERSTATS if v.casefold() == value), None)
