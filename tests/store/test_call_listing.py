"""list_calls ordering, filters, totals and cursor paging; active-call queries."""

from __future__ import annotations

import pytest

from voicedock.domain.records import Call, CallStatus
from voicedock.store import CallQuery, Store
from voicedock.store.base import CallCursor, TimeRange

from .builders import at, insert_call, make_call, seed_number, seed_org

pytestmark = pytest.mark.unit


async def seed_calls(store: Store, org_id: str, count: int) -> list[Call]:
    """Calls one minute apart, the oldest first."""
    return [
        await insert_call(store, make_call(org_id, created_at=at(60 * i))) for i in range(count)
    ]


def ids(calls: list[Call]) -> list[str]:
    return [c.id for c in calls]


async def test_newest_first_and_organization_scoped(store: Store) -> None:
    org, other = await seed_org(store), await seed_org(store)
    mine = await seed_calls(store, org.id, 3)
    await seed_calls(store, other.id, 2)
    page = await store.list_calls(CallQuery(organization_id=org.id))
    assert ids(page.calls) == ids(mine[::-1])
    assert page.total == 3


async def test_same_created_at_is_ordered_by_insertion_newest_first(store: Store) -> None:
    org = await seed_org(store)
    calls = [await insert_call(store, make_call(org.id, created_at=at(0))) for _ in range(3)]
    assert calls[0].seq < calls[1].seq < calls[2].seq
    page = await store.list_calls(CallQuery(organization_id=org.id))
    assert ids(page.calls) == ids(calls[::-1])


async def test_created_at_wins_over_insertion_order(store: Store) -> None:
    org = await seed_org(store)
    late = await insert_call(store, make_call(org.id, created_at=at(100)))
    early = await insert_call(store, make_call(org.id, created_at=at(1)))
    page = await store.list_calls(CallQuery(organization_id=org.id))
    assert ids(page.calls) == [late.id, early.id]


async def test_status_and_date_filters_with_total_of_the_filtered_set(store: Store) -> None:
    org = await seed_org(store)
    calls = await seed_calls(store, org.id, 6)
    async with store.transaction() as tx:
        for call in calls[::2]:
            call.status = CallStatus.ENDED
            await tx.update_call(call)
    ended = await store.list_calls(
        CallQuery(organization_id=org.id, status=CallStatus.ENDED, limit=2)
    )
    assert ids(ended.calls) == [calls[4].id, calls[2].id]
    assert ended.total == 3

    # both bounds are inclusive
    window = await store.list_calls(
        CallQuery(organization_id=org.id, created=TimeRange(at(60), at(180)))
    )
    assert ids(window.calls) == [calls[3].id, calls[2].id, calls[1].id]
    assert window.total == 3

    combined = await store.list_calls(
        CallQuery(organization_id=org.id, status=CallStatus.CONNECTING, created=TimeRange(at(61)))
    )
    assert ids(combined.calls) == [calls[5].id, calls[3].id]
    assert combined.total == 2


async def test_limit_and_offset(store: Store) -> None:
    org = await seed_org(store)
    calls = (await seed_calls(store, org.id, 5))[::-1]
    page = await store.list_calls(CallQuery(organization_id=org.id, limit=2, offset=1))
    assert ids(page.calls) == ids(calls[1:3])
    assert page.total == 5
    empty = await store.list_calls(CallQuery(organization_id=org.id, limit=2, offset=10))
    assert empty.calls == []
    assert empty.total == 5


async def page_through(store: Store, org_id: str, *, same_instant: bool) -> list[str]:
    """Every page of 3 by cursor, newest first; between two pages a newer call arrives (and,
    if ``same_instant``, one created at the same instant as the page's last call)."""
    seen: list[str] = []
    cursor: CallCursor | None = None
    inserted = 0
    while True:
        page = await store.list_calls(CallQuery(organization_id=org_id, limit=3, after=cursor))
        if not page.calls:
            return seen
        seen += ids(page.calls)
        cursor = CallCursor(page.calls[-1].created_at, page.calls[-1].seq)
        await insert_call(store, make_call(org_id, created_at=at(10_000 + inserted)))
        if same_instant:
            await insert_call(store, make_call(org_id, created_at=cursor.created_at))
        inserted += 1


async def test_cursor_pages_stay_stable_while_calls_are_inserted(store: Store) -> None:
    org = await seed_org(store)
    calls = (await seed_calls(store, org.id, 7))[::-1]  # newest first
    assert await page_through(store, org.id, same_instant=False) == ids(calls)


async def test_cursor_pages_follow_the_list_order_when_insertion_order_differs(
    store: Store,
) -> None:
    """Calls are stored in another order than their creation times (two requests: the one
    created first stored second), and new calls arrive while paging: every call listed once,
    in the list's order (newest first), none skipped."""
    org = await seed_org(store)
    minutes = [3, 1, 4, 0, 5, 2, 6, 8, 7, 9]  # creation minute of each call, in insertion order
    calls = [await insert_call(store, make_call(org.id, created_at=at(60 * m))) for m in minutes]
    expected = sorted(calls, key=lambda c: c.created_at, reverse=True)
    assert await page_through(store, org.id, same_instant=True) == ids(expected)


async def test_active_calls_and_counts(store: Store) -> None:
    org = await seed_org(store)
    number = await seed_number(store, org.id, max_concurrent_calls=9)
    statuses = [CallStatus.CONNECTING, CallStatus.IN_PROGRESS, CallStatus.ENDED, CallStatus.FAILED]
    calls = [
        await insert_call(store, make_call(org.id, status=s, number_id=number.id)) for s in statuses
    ]
    other_number = await seed_number(store, org.id)
    await insert_call(store, make_call(org.id, number_id=other_number.id))
    active = await store.list_active_calls()
    assert ids(active)[:2] == ids(calls[:2])
    assert {c.status for c in active} == {CallStatus.CONNECTING, CallStatus.IN_PROGRESS}
    assert len(active) == 3
    assert await store.count_active_calls(number.id) == 2
    assert await store.count_active_calls(other_number.id) == 1
    assert await store.count_active_calls("unknown") == 0
