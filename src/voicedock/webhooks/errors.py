"""Errors raised by the webhooks subsystem.

VoicedockError
└── WebhookError
    ├── InvalidSecret        — a signing secret that is not ``whsec_`` + base64 of 24..64 bytes
    ├── VerificationError    — an incoming webhook must be rejected
    │   ├── MissingHeaders
    │   ├── TimestampOutOfTolerance
    │   └── BadSignature     — no signature matches (tampered body, wrong secret)
    └── UnsafeUrl            — a webhook URL that may not be called (SSRF guard)
"""

from __future__ import annotations

from voicedock.errors import VoicedockError


class WebhookError(VoicedockError):
    """Root of the webhooks subsystem's errors."""


class InvalidSecret(WebhookError):
    """The signing secret is malformed or too short/long."""


class VerificationError(WebhookError):
    """An incoming webhook failed verification and must be rejected (reply 400/401)."""


class MissingHeaders(VerificationError):
    """One of ``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` is missing."""


class TimestampOutOfTolerance(VerificationError):
    """``webhook-timestamp`` is malformed or too far from the receiver's clock (replay guard)."""


class BadSignature(VerificationError):
    """No ``v1`` signature in ``webhook-signature`` matches the body."""


class UnsafeUrl(WebhookError):
    """The URL may not be called: bad scheme, credentials, or an internal address."""

    def __init__(self, url_for_log: str, reason: str) -> None:
        super().__init__(f"webhook URL refused ({reason}): {url_for_log}")
        self.reason = reason
