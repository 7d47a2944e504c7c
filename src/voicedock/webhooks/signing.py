"""Standard Webhooks signatures (symmetric ``v1``, HMAC-SHA256).

Every webhook voicedock sends carries three headers::

    webhook-id:        msg_...            (same value on every retry: use it to de-duplicate)
    webhook-timestamp: 1674087231         (unix seconds of this attempt)
    webhook-signature: v1,<base64 hmac>   (space-separated list during a secret rotation)

The signed content is ``f"{webhook-id}.{webhook-timestamp}.".encode() + raw_body`` and the key
is the base64-decoded part of the ``whsec_...`` secret.

Receiving applications written in Python can verify a request with this module alone::

    from voicedock.webhooks.signing import verify, VerificationError

    try:
        verify(secret, request.headers, raw_body)   # raw bytes, before any JSON parsing
    except VerificationError:
        return Response(status=401)

This module is pure: no I/O, no clock unless ``now`` is omitted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from voicedock.domain.webhooks import decode_secret
from voicedock.errors import (
    BadSignature,
    MissingHeaders,
    TimestampOutOfTolerance,
    VerificationError,
)

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "HEADER_ID",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "VerificationError",
    "VerifiedWebhook",
    "new_message_id",
    "sign",
    "signature",
    "verify",
]

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300

# A message id ends up both in a header and in the signed content, where a "." would let an
# attacker shift bytes between id and timestamp; keep it to a boring token alphabet.
_MESSAGE_ID = re.compile(r"[A-Za-z0-9_\-]{1,128}")


@dataclass(frozen=True, slots=True)
class VerifiedWebhook:
    """What a successful :func:`verify` learned: the idempotency key and the attempt time."""

    msg_id: str
    timestamp: int


def new_message_id() -> str:
    """A unique ``webhook-id`` for one event (kept across every retry of that event)."""
    return "msg_" + secrets.token_urlsafe(18)


def _check_message_id(msg_id: str) -> None:
    if not _MESSAGE_ID.fullmatch(msg_id):
        raise ValueError("webhook message id must be 1-128 characters of [A-Za-z0-9_-]")


def _mac(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp}.".encode("ascii") + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``body`` for the given id and attempt time."""
    _check_message_id(msg_id)
    digest = _mac(decode_secret(secret), msg_id, timestamp, body)
    return f"{SIGNATURE_VERSION}," + base64.b64encode(digest).decode("ascii")


def sign(
    secret: str,
    msg_id: str,
    timestamp: int,
    body: bytes,
    *,
    previous_secrets: Iterable[str] = (),
) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery attempt.

    ``previous_secrets`` adds signatures made with retired secrets so receivers can rotate
    their secret without downtime.
    """
    signatures = [signature(secret, msg_id, timestamp, body)]
    signatures += [signature(old, msg_id, timestamp, body) for old in previous_secrets]
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: " ".join(signatures),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    # Accepts any mapping (dict, aiohttp's CIMultiDict, ...) and matches names case-insensitively.
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise MissingHeaders(f"missing header {name}")


def _parse_timestamp(raw: str, now: float, tolerance: int) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise TimestampOutOfTolerance("webhook-timestamp is not a unix time in seconds")
    timestamp = int(raw)
    if abs(now - timestamp) > tolerance:
        raise TimestampOutOfTolerance("webhook-timestamp is too far from the current time")
    return timestamp


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> VerifiedWebhook:
    """Check a received webhook; raise a :class:`VerificationError` subclass if it is not genuine.

    ``body`` must be the raw request bytes. ``now`` (unix seconds) defaults to the system clock.
    Any one matching ``v1`` signature in the space-separated header is enough.
    """
    msg_id = _header(headers, HEADER_ID)
    raw_timestamp = _header(headers, HEADER_TIMESTAMP)
    signature_header = _header(headers, HEADER_SIGNATURE)
    key = decode_secret(secret)
    current = time.time() if now is None else now
    timestamp = _parse_timestamp(raw_timestamp.strip(), current, tolerance)
    expected = _mac(key, msg_id, timestamp, body)
    for candidate in signature_header.split():
        version, _, encoded = candidate.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            received = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(received, expected):
            return VerifiedWebhook(msg_id=msg_id, timestamp=timestamp)
    raise BadSignature("no matching v1 signature")
