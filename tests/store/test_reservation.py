"""reserve_phone_number: LRU choice, the concurrent-call limit, tenancy and races."""

from __future__ import annotations

import asyncio

import pytest

from voicedock.domain.records import CallStatus, PhoneNumber
from voicedock.store import Store
from voicedock.store.base import NumberChoice

from .builders import at, insert_call, make_call, seed_number, seed_org

pytestmark = pytest.mark.unit


async def reserve_and_place(
    store: Store, org_id: str, number_id: str | None, seconds: float = 0
) -> PhoneNumber | None:
    """What the call engine does: reserve, then insert the call, in one transaction."""
    async with store.transaction() as tx:
        number = await tx.reserve_phone_number(NumberChoice(org_id, number_id), at(seconds))
        if number is not None:
            await tx.insert_call(make_call(org_id, number_id=number.id))
        return number


async def test_least_recently_used_number_first_never_used_before_all(store: Store) -> None:
    org = await seed_org(store)
    old = await seed_number(store, org.id, max_concurrent_calls=5, last_used_at=at(-100))
    recent = await seed_number(store, org.id, max_concurrent_calls=5, last_used_at=at(-10))
    fresh = await seed_number(store, org.id, max_concurrent_calls=5, created_at=at(-1))

    picked = [await reserve_and_place(store, org.id, None, seconds=i) for i in range(4)]
    assert [n.id if n else None for n in picked] == [fresh.id, old.id, recent.id, fresh.id]
    stored = await store.get_phone_number(org.id, fresh.id)
    assert stored is not None
    assert stored.last_used_at == at(3)
    assert picked[0] is not None
    assert picked[0].last_used_at == at(0)


async def test_full_numbers_are_skipped_and_none_when_all_are_full(store: Store) -> None:
    org = await seed_org(store)
    first = await seed_number(store, org.id, max_concurrent_calls=1, last_used_at=at(-100))
    second = await seed_number(store, org.id, max_concurrent_calls=1, last_used_at=at(-50))
    a = await reserve_and_place(store, org.id, None, 1)
    b = await reserve_and_place(store, org.id, None, 2)
    assert (a and a.id, b and b.id) == (first.id, second.id)
    assert await reserve_and_place(store, org.id, None, 3) is None
    assert await store.count_active_calls(first.id) == 1


async def test_terminal_calls_free_their_slot(store: Store) -> None:
    org = await seed_org(store)
    number = await seed_number(store, org.id, max_concurrent_calls=1)
    assert await reserve_and_place(store, org.id, number.id) is not None
    assert await reserve_and_place(store, org.id, number.id) is None
    (active,) = await store.list_active_calls()
    async with store.transaction() as tx:
        call = await tx.get_call_for_update(active.id)
        assert call is not None
        call.status = CallStatus.ENDED
        await tx.update_call(call)
    assert await store.count_active_calls(number.id) == 0
    assert await reserve_and_place(store, org.id, number.id) is not None


async def test_explicit_number_only_in_its_organization(store: Store) -> None:
    org, other = await seed_org(store), await seed_org(store)
    theirs = await seed_number(store, other.id, max_concurrent_calls=3)
    mine = await seed_number(store, org.id, max_concurrent_calls=3)
    assert await reserve_and_place(store, org.id, theirs.id) is None
    got = await reserve_and_place(store, org.id, mine.id)
    assert got is not None
    assert got.id == mine.id
    # without number_id another organization's numbers are never chosen
    await seed_number(store, org.id, max_concurrent_calls=0)
    lone = await seed_org(store)
    assert await reserve_and_place(store, lone.id, None) is None
    untouched = await store.get_phone_number(other.id, theirs.id)
    assert untouched is not None
    assert untouched.last_used_at is None


async def test_zero_limit_number_is_never_reserved(store: Store) -> None:
    org = await seed_org(store)
    number = await seed_number(store, org.id, max_concurrent_calls=0)
    assert await reserve_and_place(store, org.id, number.id) is None


async def test_rolled_back_reservation_leaves_no_trace(store: Store) -> None:
    org = await seed_org(store)
    number = await seed_number(store, org.id)

    async def reserve_then_fail() -> None:
        async with store.transaction() as tx:
            assert await tx.reserve_phone_number(NumberChoice(org.id), at(9)) is not None
            raise RuntimeError("placement failed")

    with pytest.raises(RuntimeError, match="placement failed"):
        await reserve_then_fail()
    stored = await store.get_phone_number(org.id, number.id)
    assert stored is not None
    assert stored.last_used_at is None


async def test_concurrent_reservations_never_exceed_the_limit(store: Store) -> None:
    org = await seed_org(store)
    number = await seed_number(store, org.id, max_concurrent_calls=3)
    results = await asyncio.gather(
        *(reserve_and_place(store, org.id, number.id, i) for i in range(20))
    )
    assert sum(r is not None for r in results) == 3
    assert await store.count_active_calls(number.id) == 3


async def test_concurrent_lru_reservations_fill_every_number_exactly(store: Store) -> None:
    org = await seed_org(store)
    numbers = [await seed_number(store, org.id, max_concurrent_calls=2) for _ in range(3)]
    results = await asyncio.gather(*(reserve_and_place(store, org.id, None, i) for i in range(15)))
    assert sum(r is not None for r in results) == 6
    for number in numbers:
        assert await store.count_active_calls(number.id) == 2


async def test_existing_calls_count_against_the_limit(store: Store) -> None:
    org = await seed_org(store)
    number = await seed_number(store, org.id, max_concurrent_calls=2)
    await insert_call(store, make_call(org.id, number_id=number.id, status=CallStatus.IN_PROGRESS))
    await insert_call(store, make_call(org.id, number_id=number.id, status=CallStatus.FAILED))
    assert await store.count_active_calls(number.id) == 1
    assert await reserve_and_place(store, org.id, None) is not None
    assert await reserve_and_place(store, org.id, None) is None


async def test_only_numbers_on_the_given_trunks_are_taken(store: Store) -> None:
    org = await seed_org(store)
    number = await seed_number(store, org.id, max_concurrent_calls=5)  # on trunk "main"
    for trunks in ((), ("other",)):
        async with store.transaction() as tx:
            assert await tx.reserve_phone_number(NumberChoice(org.id, trunks=trunks), at(0)) is None
            assert (
                await tx.reserve_phone_number(NumberChoice(org.id, number.id, trunks=trunks), at(0))
                is None
            )
    async with store.transaction() as tx:
        taken = await tx.reserve_phone_number(NumberChoice(org.id, trunks=("main", "other")), at(1))
    assert taken is not None
    assert taken.id == number.id
