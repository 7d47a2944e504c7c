"""CRUD and round-trips of every entity, on both backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from voicedock.domain.ai_disclosure import AiDisclosure
from voicedock.domain.assistant_config import config_of
from voicedock.domain.attestation import CallerAttestation
from voicedock.domain.records import (
    ApiKey,
    Assistant,
    Call,
    CallStatus,
    Direction,
    Organization,
    PhoneNumber,
    Trunk,
)
from voicedock.domain.vocabulary import Pronunciation, Vocabulary
from voicedock.store import DuplicateKeyError, Store, StoreError

from .builders import (
    BASE_TIME,
    at,
    insert_call,
    make_call,
    new_id,
    seed_assistant,
    seed_number,
    seed_org,
    seed_trunk,
)

pytestmark = pytest.mark.unit


async def test_organization_round_trip_and_lookup_by_name(store: Store) -> None:
    org = Organization(id="org_a", name="Acme", created_at=BASE_TIME)
    async with store.transaction() as tx:
        await tx.insert_organization(org)
    assert await store.get_organization("org_a") == org
    assert await store.get_organization_by_name("Acme") == org
    assert await store.get_organization("missing") is None
    assert await store.get_organization_by_name("acme") is None


async def test_organization_settings_are_updated_and_read_back(store: Store) -> None:
    org = Organization(id="org_a", name="Acme", created_at=BASE_TIME)
    async with store.transaction() as tx:
        await tx.insert_organization(org)
    assert (org.display_name, org.assistant_defaults, org.max_concurrent_calls) == ("", {}, None)
    org.display_name = "Acme B.V."
    org.assistant_defaults = {"first_message": "Hello", "llm_config": {"temperature": 0.5}}
    org.max_concurrent_calls = 0  # no limit, set by the operator: not the file's (None)
    org.ai_disclosure_required = True
    org.vocabulary = Vocabulary(
        keyterms=["Acme Dental"],
        pronunciations=[
            Pronunciation(grapheme="Nguyen", alias="Win", phoneme="wɪn", alphabet="ipa")
        ],
    )
    async with store.transaction() as tx:
        await tx.update_organization(org)
    assert await store.get_organization("org_a") == org
    missing = Organization(id="missing", name="Nobody")
    with pytest.raises(StoreError):
        async with store.transaction() as tx:
            await tx.update_organization(missing)


async def test_duplicate_organization_name_is_a_duplicate_key(store: Store) -> None:
    await seed_org(store, "Acme")
    with pytest.raises(DuplicateKeyError):
        await seed_org(store, "Acme")


async def test_api_key_found_by_hash_with_revocation(store: Store) -> None:
    org = await seed_org(store)
    key = ApiKey(
        id="key_1",
        organization_id=org.id,
        key_hash="ab" * 32,
        name="ci",
        created_at=BASE_TIME,
        revoked_at=at(60),
    )
    async with store.transaction() as tx:
        await tx.insert_api_key(key)
    assert await store.find_api_key("ab" * 32) == key
    assert await store.find_api_key("cd" * 32) is None
    with pytest.raises(DuplicateKeyError):
        async with store.transaction() as tx:
            await tx.insert_api_key(ApiKey(id="key_2", organization_id=org.id, key_hash="ab" * 32))


async def test_trunk_upsert_replaces_the_definition(store: Store) -> None:
    await seed_trunk(store, "b-trunk")
    async with store.transaction() as tx:
        await tx.upsert_trunk(Trunk(name="a-trunk", pbx_endpoint="a", codec="alaw"))
        await tx.upsert_trunk(
            Trunk(name="b-trunk", pbx_endpoint="new", description="moved", pbx="fra")
        )
    assert await store.list_trunks() == [
        Trunk(name="a-trunk", pbx_endpoint="a", codec="alaw"),
        Trunk(name="b-trunk", pbx_endpoint="new", description="moved", pbx="fra"),
    ]
    assert await store.get_trunk("a-trunk") == Trunk(name="a-trunk", pbx_endpoint="a", codec="alaw")
    assert await store.get_trunk("zzz") is None


async def test_phone_number_crud_scoped_to_organization(store: Store) -> None:
    org, other = await seed_org(store), await seed_org(store)
    assistant = await seed_assistant(store, org.id)
    number = PhoneNumber(
        id="num_1",
        organization_id=org.id,
        number="+4930123456",
        trunk="main",
        max_concurrent_calls=4,
        assistant_id=assistant.id,
        label="Berlin",
        last_used_at=at(5),
        created_at=BASE_TIME,
        updated_at=BASE_TIME,
    )
    async with store.transaction() as tx:
        await tx.insert_phone_number(number)
    assert await store.get_phone_number(org.id, "num_1") == number
    assert await store.get_phone_number(None, "num_1") == number
    assert await store.get_phone_number(other.id, "num_1") is None
    assert await store.find_phone_number_by_e164("+4930123456") == number
    assert await store.list_phone_numbers(org.id) == [number]
    assert await store.list_phone_numbers(other.id) == []

    number.label = "Berlin HQ"
    number.max_concurrent_calls = 2
    number.assistant_id = None
    async with store.transaction() as tx:
        await tx.update_phone_number(number)
    stored = await store.get_phone_number(org.id, "num_1")
    assert stored is not None
    assert (stored.label, stored.max_concurrent_calls, stored.assistant_id) == (
        "Berlin HQ",
        2,
        None,
    )
    assert stored.updated_at > BASE_TIME
    assert stored.last_used_at == at(5)

    async with store.transaction() as tx:
        assert await tx.delete_phone_number(other.id, "num_1") is False
        assert await tx.delete_phone_number(org.id, "num_1") is True
        assert await tx.delete_phone_number(org.id, "num_1") is False
    assert await store.get_phone_number(org.id, "num_1") is None


async def test_phone_number_e164_is_unique_across_organizations(store: Store) -> None:
    org, other = await seed_org(store), await seed_org(store)
    await seed_number(store, org.id, e164="+15550001111")
    with pytest.raises(DuplicateKeyError):
        await seed_number(store, other.id, e164="+15550001111")


async def test_update_of_another_organizations_number_fails(store: Store) -> None:
    org, other = await seed_org(store), await seed_org(store)
    number = await seed_number(store, org.id)
    number.organization_id = other.id
    with pytest.raises(StoreError):
        async with store.transaction() as tx:
            await tx.update_phone_number(number)


async def test_assistant_crud_with_json_config(store: Store) -> None:
    org, other = await seed_org(store), await seed_org(store)
    assistant = await seed_assistant(store, org.id)
    assert await store.get_assistant(org.id, assistant.id) == assistant
    assert await store.get_assistant(other.id, assistant.id) is None
    assert await store.list_assistants(org.id) == [assistant]

    section = {"nested": {"list": [1, 2.5, None, "ü"]}, "flag": True}
    assistant.config = config_of({"llm_config": section, "record": True})
    assistant.active = False
    assistant.business_name = "Clinic"
    async with store.transaction() as tx:
        await tx.update_assistant(assistant)
    stored = await store.get_assistant(None, assistant.id)
    assert stored is not None
    assert stored.config == config_of({"llm_config": section, "record": True})
    assert stored.active is False
    assert stored.business_name == "Clinic"
    assert stored == assistant  # updated_at written back to the record

    async with store.transaction() as tx:
        assert await tx.delete_assistant(other.id, assistant.id) is False
        assert await tx.delete_assistant(org.id, assistant.id) is True
    assert await store.list_assistants(org.id) == []


async def test_deleting_an_assistant_unlinks_its_number(store: Store) -> None:
    org = await seed_org(store)
    assistant = await seed_assistant(store, org.id)
    number = await seed_number(store, org.id)
    number.assistant_id = assistant.id
    async with store.transaction() as tx:
        await tx.update_phone_number(number)
        await tx.delete_assistant(org.id, assistant.id)
    stored = await store.get_phone_number(org.id, number.id)
    assert stored is not None
    assert stored.assistant_id is None


def full_call(org_id: str, number_id: str, assistant_id: str) -> Call:
    return Call(
        id=new_id("call"),
        organization_id=org_id,
        direction=Direction.INBOUND,
        status=CallStatus.ENDED,
        caller_phone="+15551112222",
        assistant_phone="+15553334444",
        number_id=number_id,
        assistant_id=assistant_id,
        agent_name="Ava",
        business_name="Clinic",
        assistant_config=config_of({"tts_config": {"voice": "lessac"}, "max_duration_seconds": 60}),
        first_message="Hi there",
        context="appointment reminder",
        error=None,
        end_reason="customer-ended-call",
        pbx_call_ref="1712345678.42",
        started_at=at(2),
        ended_at=at(62),
        duration_seconds=60,
        summary="Confirmed.",
        analysis_result={"booked": True},
        latency=[{"turn": 1, "stt_ms": 120, "llm_ms": 300}],
        timings={"media_connected_ms": 12, "first_audio_ms": 15},
        transferred_to="+15550009999",
        transferred_at=at(50),
        pbx="ams",
        recording_path="acme/call.wav",
        recording_duration_seconds=59.42,
        answering_machine={"result": "human", "evidence": {"decided_at_ms": 1860}},
        ai_disclosure=AiDisclosure(
            required_by="operator", method="spoken", said=True, at="2026-11-27T16:20:00.000Z"
        ),
        caller_attestation=CallerAttestation(attest="A", verstat="TN-Validation-Passed"),
        created_at=at(0),
        updated_at=at(62),
    )


async def test_call_round_trips_every_field(store: Store) -> None:
    org = await seed_org(store)
    number = await seed_number(store, org.id)
    assistant = await seed_assistant(store, org.id)
    call = full_call(org.id, number.id, assistant.id)
    inserted = await insert_call(store, call)
    assert inserted.seq > 0
    assert call.seq == 0  # the input record is left alone
    stored = await store.get_call(org.id, call.id)
    assert stored == inserted
    assert stored is not None
    assert stored.started_at is not None
    assert stored.started_at.tzinfo is not None
    assert stored.direction is Direction.INBOUND
    assert stored.status is CallStatus.ENDED


async def test_datetimes_in_other_zones_come_back_as_the_same_utc_instant(store: Store) -> None:
    org = await seed_org(store)
    plus_two = timezone(timedelta(hours=2))
    call = make_call(org.id, created_at=datetime(2025, 3, 1, 14, 0, tzinfo=plus_two))
    await insert_call(store, call)
    stored = await store.get_call(None, call.id)
    assert stored is not None
    assert stored.created_at == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert stored.created_at.utcoffset() == timedelta(0)


async def test_get_call_filters_by_organization(store: Store) -> None:
    org, other = await seed_org(store), await seed_org(store)
    call = await insert_call(store, make_call(org.id))
    assert await store.get_call(org.id, call.id) == call
    assert await store.get_call(None, call.id) == call
    assert await store.get_call(other.id, call.id) is None
    assert await store.get_call(org.id, "nope") is None


async def test_update_call_writes_every_mutable_field(store: Store) -> None:
    org = await seed_org(store)
    number = await seed_number(store, org.id)
    assistant = await seed_assistant(store, org.id)
    call = await insert_call(store, make_call(org.id))
    target = full_call(org.id, number.id, assistant.id)
    async with store.transaction() as tx:
        locked = await tx.get_call_for_update(call.id)
        assert locked == call
        for name in Call.__slots__:
            if name not in {"id", "organization_id", "direction", "created_at", "seq"}:
                setattr(locked, name, getattr(target, name))
        await tx.update_call(locked)
    stored = await store.get_call(org.id, call.id)
    assert stored == locked
    assert stored is not None
    assert stored.updated_at > target.updated_at
    assert stored.analysis_result == {"booked": True}
    assert stored.transferred_to == "+15550009999"


async def test_update_of_a_missing_call_fails_and_rolls_back(store: Store) -> None:
    org = await seed_org(store)

    async def insert_one_then_update_a_missing_one() -> None:
        async with store.transaction() as tx:
            await tx.insert_call(make_call(org.id))
            await tx.update_call(make_call(org.id))

    with pytest.raises(StoreError):
        await insert_one_then_update_a_missing_one()
    assert await store.list_active_calls() == []


async def test_exception_in_transaction_rolls_everything_back(store: Store) -> None:
    org = await seed_org(store)

    async def write_then_fail() -> None:
        async with store.transaction() as tx:
            await tx.insert_call(make_call(org.id))
            await tx.insert_assistant(
                Assistant(id="a1", organization_id=org.id, name="x", config=config_of({}))
            )
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await write_then_fail()
    assert await store.list_active_calls() == []
    assert await store.get_assistant(None, "a1") is None
    # and the store is still usable afterwards
    call = await insert_call(store, make_call(org.id))
    assert await store.get_call(None, call.id) == call


async def test_a_transaction_cancelled_again_and_again_leaves_no_transaction_open(
    store: Store,
) -> None:
    """A shutdown cancels a task in a transaction, at times more than once: while it begins,
    while it rolls back. No connection goes back to the pool with a transaction open (asyncpg
    would reset it, saying so at error level), and the store goes on. (A connection the pool
    was opening when cancelled may still leave asyncpg's "Future exception was never
    retrieved": not a transaction's.)"""
    org = await seed_org(store)
    loop = asyncio.get_running_loop()
    said: list[str] = []
    loop.set_exception_handler(lambda _loop, context: said.append(context["message"]))
    try:
        for steps in range(30):  # the first cancel a step later each time

            async def write() -> None:
                async with store.transaction() as tx:
                    await tx.insert_call(make_call(org.id))
                    await asyncio.sleep(10)

            task = asyncio.create_task(write())
            for _ in range(steps):
                await asyncio.sleep(0)
            while not task.done():  # then again at each step, until it is over
                task.cancel()
                await asyncio.sleep(0)
            with pytest.raises(asyncio.CancelledError):
                await task
        await asyncio.sleep(0.2)  # a connection given back is reset meanwhile
    finally:
        loop.set_exception_handler(None)
    assert [m for m in said if "active transaction" in m] == []
    assert await store.list_active_calls() == []
    call = await insert_call(store, make_call(org.id))
    assert await store.get_call(None, call.id) == call


async def test_closed_store_raises_store_error(store_url: str) -> None:
    from voicedock.store import open_store

    closed = await open_store(store_url)
    await closed.aclose()
    await closed.aclose()
    with pytest.raises(StoreError):
        await asyncio.wait_for(closed.get_organization("x"), 5)
    with pytest.raises(StoreError):
        async with closed.transaction():
            pass
