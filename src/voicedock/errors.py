"""The voicedock exception tree.

    VoicedockError
    ├── ApiError                 — maps to one documented HTTP error body
    │   ├── BadRequest (400)     ├── Unauthorized (401)   ├── Forbidden (403)
    │   ├── NotFound (404)       ├── Conflict (409)       ├── PayloadTooLarge (413)
    │   ├── UnsupportedMediaType (415)
    │   ├── Unprocessable (422)  ├── UnresolvableConfig (a BadRequest of its own title)
    │   └── RetryLater           — answered with Retry-After
    │       └── RateLimited (429)
    ├── ConfigError              — a bad setting; names the key
    ├── StoreError
    │   └── StoreUnavailable     — for now (locked file, lost connection, failover): retry
    ├── PbxError                 — the PBX refused or broke
    │   └── PbxUnavailable       — not connected / app not registered
    ├── MediaError               — the call's media stream failed (subclasses in media/errors.py)
    ├── ProviderError            — speech/LLM provider; carries ``retryable``
    └── WebhookError
        ├── InvalidSecret        — a signing secret that is not ``whsec_`` + base64 of 24..64 bytes
        ├── VerificationError    — an incoming webhook must be rejected
        │   ├── MissingHeaders
        │   ├── TimestampOutOfTolerance
        │   └── BadSignature     — no signature matches (tampered body, wrong secret)
        └── UnsafeUrl            — a webhook URL that may not be called (SSRF guard)

Low-level errors (aiohttp, asyncpg, sqlite3, OSError) are translated at each I/O boundary.
"""

from __future__ import annotations

from collections.abc import Mapping


class VoicedockError(Exception):
    """Root of every error voicedock raises on purpose."""


class ApiError(VoicedockError):
    """An error with a documented HTTP body: ``{"error": ..., "message": ...}``, and the
    ``extra`` fields that name what it is about (the failed call's ``call_id``...)."""

    status: int = 500
    error: str = "Internal error"

    def __init_subclass__(cls, *, status: int | None = None, error: str | None = None) -> None:
        """A subclass's status and title, given where it is declared (``class
        NotFound(ApiError, status=404, error="Not found")``); else its base's."""
        super().__init_subclass__()
        if status is not None:
            cls.status = status
        if error is not None:
            cls.error = error

    def __init__(
        self, message: str, *, error: str | None = None, extra: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if error is not None:
            self.error = error
        self._extra = dict(extra or {})

    def body(self) -> dict[str, str]:
        return {"error": self.error, "message": self.message, **self._extra}

    def headers(self) -> dict[str, str]:
        """Response headers that go with the body."""
        return {}


class BadRequest(ApiError, status=400, error="Bad request"): ...


class Unauthorized(ApiError, status=401, error="Invalid API key"): ...


class PaymentRequired(ApiError, status=402, error="Spending limit reached"):
    """402: the organization's monthly spending limit is reached (docs/billing.md)."""


class Forbidden(ApiError, status=403, error="Forbidden"): ...


class NotFound(ApiError, status=404, error="Not found"): ...


class Conflict(ApiError, status=409, error="Conflict"): ...


class PayloadTooLarge(ApiError, status=413, error="Payload too large"): ...


class UnsupportedMediaType(ApiError, status=415, error="Unsupported media type"):
    """A request body declared of another type than JSON (``Content-Type``)."""


class Unprocessable(ApiError, status=422, error="Unprocessable entity"):
    """A request valid in itself that names an object of the organization that does not
    exist or does not fit (an analysis or tool template, a provider key, the assistant of a
    number or a webhook), or an ``Idempotency-Key`` sent again with another body. What the
    request itself gets wrong, or the node's policy refuses, is a ``BadRequest``."""


class UnresolvableConfig(BadRequest, error="Unresolvable configuration"):
    """An assistant configuration valid field by field that does not resolve into providers
    on this node: a contradiction once merged with what it overrides (a saved assistant, a
    PATCH's stored settings), a provider's required sections missing, a key the operator's
    default engine does not take, an engine or voice the node does not have, a provider URL
    the operator's egress policy refuses. A 400 like every request whose own content is
    invalid or refused by the node's policy; its title tells it from a field that breaks
    the request's schema."""


class RetryLater(ApiError):
    """An error the client may retry after ``Retry-After`` seconds (one at least): a limit
    reached (``RateLimited``), a node that takes no call for now (``calls/errors.py``)."""

    def __init__(
        self, message: str, *, error: str | None = None, retry_after_seconds: int = 1
    ) -> None:
        super().__init__(message, error=error)
        self.retry_after_seconds = max(1, retry_after_seconds)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class RateLimited(RetryLater, status=429, error="Too many requests"): ...


class UpstreamFailed(ApiError, status=502, error="Bad gateway"):
    """A service the request needed answered nothing usable (an embeddings endpoint); the
    request may be sent again."""


class ConfigError(VoicedockError):
    """A configuration value is missing or invalid; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"config: {key}: {problem}")
        self.key = key
        self.problem = problem


class StoreError(VoicedockError):
    """The database failed in a way the caller cannot fix."""


class StoreUnavailable(StoreError):
    """The database cannot take the request *right now*: another process holds the SQLite
    file's write lock, the PostgreSQL connection was lost, the server is shutting down or
    failing over. Nothing was committed; the same work may be retried (the API answers 503
    with ``Retry-After``; PBX events and call records wait and retry)."""

    retry_after_seconds = 2


class PbxError(VoicedockError):
    """The PBX refused an action or the connection to it broke."""


class PbxUnavailable(PbxError):
    """No usable PBX connection (not connected, or the ARI app is not registered)."""


class MediaError(VoicedockError):
    """The call's media stream failed."""


class ProviderError(VoicedockError):
    """A speech or language provider failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class WebhookError(VoicedockError):
    """Root of the webhooks subsystem's errors."""


class ServerRequestFailed(WebhookError):
    """A request a call waits for (``tool-calls``, ``assistant-request``) got no usable
    answer: no endpoint, a refused URL, a timeout, an error status, an answer that is not a
    JSON object. ``reason`` is short and safe to show to the model or to log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
        super().__init__(f"URL refused ({reason}): {url_for_log}")
        self.reason = reason
