"""Idempotent ``POST /calls/outbound``: the stored answer of a key, replayed exactly.

The record holds the answer as the API wrote it (``api/routes/calls.py``): the engine hands the
API the checked request (``OutboundAsk.placing``: the call it will place or schedule), the API
gives its answer to it back with ``OutboundAsk.place``, and the engine stores it with the key in
the transaction that creates the call, before the PBX is asked; it is given again byte for byte.
A call the PBX then refused was answered 503, so a replay of its key answers 503 again.

A record lives ``IDEMPOTENCY_TTL`` (24 h): after that the key is free and a request with it is a
new request. Every request with a key first deletes the expired records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from voicedock.calls.errors import CallNotPlaced
from voicedock.domain.json import JsonObject
from voicedock.domain.records import IdempotencyRecord
from voicedock.errors import Unprocessable
from voicedock.store.base import Transaction

NOT_PLACED = "not-placed"  # end_reason of a call the PBX never accepted
IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    key: str
    request_hash: str  # of the canonical request body: same key + other body → 422


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """An HTTP answer as the API wrote it: stored with its key, given again exactly."""

    status: int
    body: JsonObject


@dataclass(frozen=True, slots=True)
class Idempotent:
    """A request with an ``Idempotency-Key``, and the API's answer to the call it places or
    schedules (``api/routes/calls.py``): stored with the key in the transaction that stores
    the call."""

    key: IdempotencyKey
    answer: StoredAnswer


@dataclass(frozen=True, slots=True)
class Replayed:
    """What an earlier request with the key was answered, to answer again."""

    answer: StoredAnswer


async def replay(
    tx: Transaction, org_id: str, idempotency: IdempotencyKey, now: datetime
) -> Replayed | None:
    """The stored answer of the key; ``None`` for a new (or expired) key."""
    record = await tx.get_idempotency(org_id, idempotency.key)
    if record is None:
        return None
    if record.created_at <= now - IDEMPOTENCY_TTL:
        await purge_expired(tx, now)  # frees this key (and every other expired one)
        return None
    if record.request_hash != idempotency.request_hash:
        raise Unprocessable(
            "this Idempotency-Key was used with a different request body",
            error="Idempotency key reused",
        )
    body = record.response_body
    call_id = body.get("call_id")
    if record.response_status == 200 and isinstance(call_id, str):
        # The record is written before originate; a call the PBX then refused was answered
        # with 503, and a replay must give the same answer.
        call = await tx.get_call_for_update(call_id)
        if call is not None and call.end_reason == NOT_PLACED:
            problem = not_placed_error(call_id)
            return Replayed(StoredAnswer(problem.status, dict(problem.body())))
    return Replayed(StoredAnswer(record.response_status, body))


def not_placed_error(call_id: str) -> CallNotPlaced:
    return CallNotPlaced(
        "the PBX could not place the call; it is recorded as failed", call_id=call_id
    )


def stored_answer(org_id: str, idempotent: Idempotent, now: datetime) -> IdempotencyRecord:
    """The record of the key: the API's answer, as it will be given again."""
    answer, key = idempotent.answer, idempotent.key
    return IdempotencyRecord(org_id, key.key, key.request_hash, answer.status, answer.body, now)


async def purge_expired(tx: Transaction, now: datetime) -> int:
    """Delete every idempotency record older than ``IDEMPOTENCY_TTL``; how many went."""
    return await tx.delete_idempotency_before(now - IDEMPOTENCY_TTL)
