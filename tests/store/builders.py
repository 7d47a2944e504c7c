"""Small record builders for the store tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from voicedock.domain.assistant_config import config_of
from voicedock.domain.records import (
    Assistant,
    Call,
    CallStatus,
    Direction,
    Organization,
    PhoneNumber,
    Trunk,
)
from voicedock.store import Store

_ids = itertools.count(1)
BASE_TIME = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):06d}"


def at(seconds: float) -> datetime:
    return BASE_TIME + timedelta(seconds=seconds)


def make_call(
    org_id: str,
    *,
    status: CallStatus = CallStatus.CONNECTING,
    number_id: str | None = None,
    created_at: datetime | None = None,
) -> Call:
    return Call(
        id=new_id("call"),
        organization_id=org_id,
        direction=Direction.OUTBOUND,
        status=status,
        caller_phone="+15551230000",
        assistant_phone="+15559870000",
        number_id=number_id,
        created_at=created_at or BASE_TIME,
        updated_at=created_at or BASE_TIME,
    )


async def seed_org(store: Store, name: str | None = None) -> Organization:
    org = Organization(id=new_id("org"), name=name or new_id("Org"), created_at=BASE_TIME)
    async with store.transaction() as tx:
        await tx.insert_organization(org)
    return org


async def seed_trunk(store: Store, name: str = "main") -> Trunk:
    trunk = Trunk(name=name, pbx_endpoint=f"{name}-endpoint")
    async with store.transaction() as tx:
        await tx.upsert_trunk(trunk)
    return trunk


async def seed_number(
    store: Store,
    org_id: str,
    *,
    max_concurrent_calls: int = 1,
    e164: str | None = None,
    created_at: datetime = BASE_TIME,
    last_used_at: datetime | None = None,
) -> PhoneNumber:
    number = PhoneNumber(
        id=new_id("num"),
        organization_id=org_id,
        number=e164 or f"+1555{next(_ids):07d}",
        trunk="main",
        max_concurrent_calls=max_concurrent_calls,
        created_at=created_at,
        updated_at=created_at,
        last_used_at=last_used_at,
    )
    async with store.transaction() as tx:
        await tx.insert_phone_number(number)
    return number


async def seed_assistant(store: Store, org_id: str) -> Assistant:
    assistant = Assistant(
        id=new_id("asst"),
        organization_id=org_id,
        name="Front desk",
        config=config_of({"llm_config": {"model": "local"}, "first_message": "Hello"}),
        created_at=BASE_TIME,
        updated_at=BASE_TIME,
    )
    async with store.transaction() as tx:
        await tx.insert_assistant(assistant)
    return assistant


async def insert_call(store: Store, call: Call) -> Call:
    async with store.transaction() as tx:
        return await tx.insert_call(call)
