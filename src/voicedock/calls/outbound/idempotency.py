"""Idempotent ``POST /calls/outbound``: the stored answer of a key, replayed exactly.

The record is written in the transaction that creates the call, before the PBX is asked; a
call the PBX then refused was answered 503, so a replay of its key answers 503 again.

A record lives ``IDEMPOTENCY_TTL`` (24 h): after that the key is free and a request with it is a
new request. Every request with a key first deletes the expired records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from voicedock.calls.errors import CallNotPlaced
from voicedock.domain.records import IdempotencyRecord, JsonObject
from voicedock.errors import Unprocessable
from voicedock.store.base import Transaction

NOT_PLACED = "not-placed"  # end_reason of a call the PBX never accepted
IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    key: str
    request_hash: str  # of the canonical request body: same key + other body → 422


@dataclass(frozen=True, slots=True)
class OutboundResult:
    status: int
    body: JsonObject
    replayed: bool = False
    deprecated: tuple[str, ...] = field(default=())


async def replay(
    tx: Transaction, org_id: str, idempotency: IdempotencyKey, now: datetime
) -> OutboundResult | None:
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
            return OutboundResult(problem.status, dict(problem.body()), replayed=True)
    return OutboundResult(record.response_status, body, replayed=True)


def not_placed_error(call_id: str) -> CallNotPlaced:
    return CallNotPlaced(
        "the PBX could not place the call; it is recorded as failed", call_id=call_id
    )


def stored_answer(
    org_id: str, idempotency: IdempotencyKey, status: int, body: JsonObject, now: datetime
) -> IdempotencyRecord:
    return IdempotencyRecord(org_id, idempotency.key, idempotency.request_hash, status, body, now)


async def purge_expired(tx: Transaction, now: datetime) -> int:
    """Delete every idempotency record older than ``IDEMPOTENCY_TTL``; how many went."""
    return await tx.delete_idempotency_before(now - IDEMPOTENCY_TTL)
