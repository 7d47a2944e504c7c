"""Do-not-call lists in the store (both backends): a number is listed by its own entry or by a
range it starts with, by its organization's entries or the operator's; one organization's
entries never list a number for another; an organization's list is counted and removed
entry by entry."""

from __future__ import annotations

import pytest

from voicedock.store import Store

from .builders import BASE_TIME, seed_org

pytestmark = pytest.mark.unit


async def test_entries_list_numbers_for_their_organization_only(store: Store) -> None:
    acme, globex = await seed_org(store), await seed_org(store)
    async with store.transaction() as tx:
        added = await tx.add_do_not_call(acme.id, ["+31612345678", "+1900*"], BASE_TIME)
        again = await tx.add_do_not_call(acme.id, ["+1900*"], BASE_TIME)
        assert (added, again) == (2, 0)
        assert await tx.count_do_not_call(acme.id) == 2
        assert await tx.is_do_not_call(acme.id, "+19005550100")  # read in the transaction
    assert await store.is_do_not_call(acme.id, "+31612345678")
    assert await store.is_do_not_call(acme.id, "+19005550100")
    assert not await store.is_do_not_call(acme.id, "+31612345679")
    assert not await store.is_do_not_call(acme.id, "+12125550101")
    # Globex: none of Acme's entries, in its list or its lookups.
    assert await store.list_do_not_call(globex.id) == []
    assert not await store.is_do_not_call(globex.id, "+31612345678")
    assert not await store.is_do_not_call(globex.id, "+19005550100")
    async with store.transaction() as tx:
        assert not await tx.delete_do_not_call(globex.id, "+1900*")
        assert await tx.delete_do_not_call(acme.id, "+1900*")
    assert await store.list_do_not_call(acme.id) == ["+31612345678"]


async def test_the_operators_entries_list_numbers_for_every_organization(store: Store) -> None:
    acme, globex = await seed_org(store), await seed_org(store)
    async with store.transaction() as tx:
        assert await tx.add_operator_do_not_call(["+4420*", "+31201234567"], BASE_TIME) == 2
    for org in (acme, globex):
        assert await store.is_do_not_call(org.id, "+442071234567")
        assert await store.is_do_not_call(org.id, "+31201234567")
        assert await store.list_do_not_call(org.id) == []  # not an organization's own
    assert await store.list_operator_do_not_call() == ["+31201234567", "+4420*"]
    async with store.transaction() as tx:
        assert await tx.delete_operator_do_not_call("+4420*")
    assert not await store.is_do_not_call(acme.id, "+442071234567")
