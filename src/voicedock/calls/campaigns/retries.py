"""Retries per outcome: which ended calls of a contact are tried again, how often, how late.

Stored as ``{"<outcome>": {"max_attempts": n, "backoff_seconds": s}}`` where an outcome is a
call's error (``busy``, ``no-answer``, ``rejected``, ``congestion``, ``unreachable``,
``pbx-error``, ...) or ``voicemail`` (a call that voicemail detection ended with that
``end_reason``). An outcome without a rule is final after one attempt; ``answered`` always is.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

import msgspec

from voicedock.calls.voicemail import VOICEMAIL  # the end reason of a machine's call
from voicedock.domain.campaigns import ANSWERED, RetryRule
from voicedock.domain.json import JsonObject
from voicedock.domain.records import Call, CallStatus
from voicedock.errors import BadRequest
from voicedock.pbx.causes import CallError

RETRYABLE = (*(e.value for e in CallError if e is not CallError.PBX_RESTART), "failed", VOICEMAIL)
MAX_ATTEMPTS = 10
MAX_BACKOFF_SECONDS = 7 * 24 * 3600


def stored_retries(rules: Mapping[str, RetryRule], key: str = "retries") -> JsonObject:
    """Retry rules as sent (the bounds are the schema's) → their stored form; 400 naming an
    outcome that is never retried."""
    for outcome in rules:
        if outcome not in RETRYABLE:
            raise BadRequest(f"{key}: outcome must be one of {', '.join(RETRYABLE)}")
    return {
        outcome: {"max_attempts": rule.max_attempts, "backoff_seconds": rule.backoff_seconds}
        for outcome, rule in rules.items()
    }


def outcome_of(call: Call) -> str:
    """What a terminal call means for its contact: ``answered``, or the call's error."""
    if call.end_reason == VOICEMAIL:
        return VOICEMAIL
    if call.started_at is not None and call.status is CallStatus.ENDED:
        return ANSWERED
    if call.error:
        return call.error
    return "failed" if call.status is CallStatus.FAILED else ANSWERED


def retry_at(rules: JsonObject, outcome: str, attempts: int, now: datetime) -> datetime | None:
    """When to call again after ``attempts`` calls ended with ``outcome``; ``None``: final."""
    stored = rules.get(outcome)
    if outcome == ANSWERED or not isinstance(stored, dict):
        return None
    rule = msgspec.convert(stored, RetryRule)
    if attempts >= rule.max_attempts:
        return None
    return now + timedelta(seconds=rule.backoff_seconds)


__all__ = ["RETRYABLE", "outcome_of", "retry_at", "stored_retries"]
