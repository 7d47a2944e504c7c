"""Squads on both backends: typed members round-trip, paging by cursor, organization scoping."""

from __future__ import annotations

from datetime import timedelta

import pytest

from voicedock.domain.records import Squad
from voicedock.domain.squads import Destination, Member
from voicedock.store import Store
from voicedock.store.base import OldestFirstQuery

from .builders import BASE_TIME, seed_org

pytestmark = pytest.mark.unit

MEMBERS = [
    Member(
        name="receptionist",
        assistant_id="asst_1",
        assistant_override={"first_message": "Hello"},
        destinations=[Destination(member="billing", description="Invoices", message="Billing.")],
    ),
    Member(name="billing", assistant={"system_prompt": "You handle invoices."}),
]


def _squad(org_id: str, n: int) -> Squad:
    moment = BASE_TIME + timedelta(seconds=n)
    return Squad(
        id=f"squad_{n}",
        organization_id=org_id,
        name=f"squad {n}",
        members=MEMBERS,
        created_at=moment,
        updated_at=moment,
    )


async def test_a_squad_round_trips_typed_and_is_updated_and_deleted(store: Store) -> None:
    org = await seed_org(store)
    squad = _squad(org.id, 1)
    async with store.transaction() as tx:
        await tx.insert_squad(squad)
    stored = await store.get_squad(org.id, squad.id)
    assert stored == squad
    assert stored is not None
    assert isinstance(stored.members[0].destinations[0], Destination)
    assert await store.get_squad("other_org", squad.id) is None

    squad.name, squad.members = "Front desk", MEMBERS[1:]
    async with store.transaction() as tx:
        await tx.update_squad(squad)
    assert await store.get_squad(org.id, squad.id) == squad

    async with store.transaction() as tx:
        assert await tx.delete_squad(org.id, squad.id)
        assert not await tx.delete_squad(org.id, squad.id)
    assert await store.get_squad(org.id, squad.id) is None


async def test_squads_page_by_cursor_within_the_organization(store: Store) -> None:
    org = await seed_org(store, "Acme")
    other = await seed_org(store, "Other")
    async with store.transaction() as tx:
        for n in range(5):
            await tx.insert_squad(_squad(org.id, n))
        await tx.insert_squad(_squad(other.id, 9))
    first = await store.list_squads(OldestFirstQuery(org.id, limit=2))
    assert [s.id for s in first.records] == ["squad_0", "squad_1"]
    assert first.total == 5
    last = await store.list_squads(OldestFirstQuery(org.id, limit=3, after="squad_1"))
    assert [s.id for s in last.records] == ["squad_2", "squad_3", "squad_4"]
    assert (await store.list_squads(OldestFirstQuery(org.id, after="squad_9"))).records == []
