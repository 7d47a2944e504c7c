"""Knowledge bases on both backends: documents and their chunks stored, found by full-text
search (stemmed words, the best chunk first), scoped to the organization and the bases named,
counted for the operator's bounds, and gone with their document or base."""

from __future__ import annotations

import asyncpg
import pytest

from voicedock.domain.knowledge import KnowledgeBase, KnowledgeChunk, KnowledgeDocument
from voicedock.store import Store
from voicedock.store.migrate import load_migrations
from voicedock.store.sql import knowledge as sql_knowledge

from .builders import new_id, seed_org

pytestmark = pytest.mark.unit

FAQ = [
    "Opening hours\nThe clinic is open Monday to Friday from eight to six.",
    "Prescriptions\nRepeat prescriptions are ready two working days after you ask for them.",
    "Parking\nPatients park for free behind the building; the entrance is on Mill Lane.",
]


async def _base(store: Store, org_id: str, name: str = "Clinic FAQ") -> KnowledgeBase:
    base = KnowledgeBase(id=new_id("kb"), organization_id=org_id, name=name)
    async with store.transaction() as tx:
        await tx.insert_knowledge_base(base)
    return base


async def _document(store: Store, base: KnowledgeBase, texts: list[str]) -> KnowledgeDocument:
    document = KnowledgeDocument(
        id=new_id("doc"),
        organization_id=base.organization_id,
        knowledge_base_id=base.id,
        name="faq.md",
        content_type="text/markdown",
        size_bytes=sum(len(t) for t in texts),
        characters=sum(len(t) for t in texts),
        chunks=len(texts),
    )
    chunks = [KnowledgeChunk(document.id, i, t) for i, t in enumerate(texts)]
    async with store.transaction() as tx:
        await tx.insert_knowledge_document(document, chunks)
    return document


async def test_a_search_finds_the_chunk_by_its_stemmed_words_best_first(store: Store) -> None:
    org = await seed_org(store)
    base = await _base(store, org.id)
    document = await _document(store, base, FAQ)

    hits = await store.search_knowledge(org.id, [base.id], ["prescription", "ready"], 3)
    assert [h.position for h in hits] == [1]  # "prescriptions" by its stem
    hit = hits[0]
    assert (hit.document_id, hit.document_name, hit.knowledge_base_id) == (
        document.id,
        "faq.md",
        base.id,
    )
    assert hit.text == FAQ[1]
    assert hit.score > 0

    hits = await store.search_knowledge(org.id, [base.id], ["park", "clinic", "open"], 3)
    assert [h.position for h in hits][:1] == [0]  # two of its words beat one
    assert {h.position for h in hits} == {0, 2}
    assert await store.search_knowledge(org.id, [base.id], ["helicopter"], 3) == []
    assert (
        len(await store.search_knowledge(org.id, [base.id], ["open", "park"], 1)) == 1
    )  # the limit


async def test_a_search_stays_in_the_organization_and_the_bases_named(store: Store) -> None:
    org, other = await seed_org(store), await seed_org(store)
    base, second = await _base(store, org.id), await _base(store, org.id, "Billing")
    theirs = await _base(store, other.id)
    await _document(store, base, FAQ)
    await _document(store, second, ["Invoices are sent on the first of the month."])
    await _document(store, theirs, ["Prescriptions are ready at once."])

    assert await store.search_knowledge(org.id, [second.id], ["prescriptions"], 5) == []
    assert await store.search_knowledge(other.id, [base.id], ["prescriptions"], 5) == []
    found = await store.search_knowledge(org.id, [base.id, second.id], ["invoices"], 5)
    assert [h.knowledge_base_id for h in found] == [second.id]
    assert [h.text for h in await store.search_knowledge(other.id, [theirs.id], ["ready"], 5)] == [
        "Prescriptions are ready at once."
    ]


async def test_documents_are_counted_listed_and_deleted_with_their_chunks(store: Store) -> None:
    org = await seed_org(store)
    base = await _base(store, org.id)
    document = await _document(store, base, FAQ)
    kept = await _document(store, base, ["Flu shots are given on Saturdays."])

    use = await store.knowledge_use(org.id)
    assert (use.bases, use.documents, use.chunks) == (1, 2, 4)
    assert use.bytes == document.size_bytes + kept.size_bytes
    async with store.transaction() as tx:
        assert await tx.knowledge_use_locked(org.id) == use
    assert [d.id for d in await store.list_knowledge_documents(org.id, base.id)] == [
        document.id,
        kept.id,
    ]
    assert [c.text for c in await store.knowledge_chunks(org.id, document.id)] == FAQ
    assert await store.get_knowledge_document(org.id, document.id) == document

    async with store.transaction() as tx:
        assert await tx.delete_knowledge_document(org.id, document.id)
        assert not await tx.delete_knowledge_document(org.id, document.id)
    assert await store.search_knowledge(org.id, [base.id], ["prescriptions"], 3) == []
    assert await store.knowledge_chunks(org.id, document.id) == []
    assert len(await store.search_knowledge(org.id, [base.id], ["flu"], 3)) == 1

    base.name, base.description = "Front desk", "What patients ask"
    async with store.transaction() as tx:
        await tx.update_knowledge_base(base)
    assert await store.get_knowledge_base(org.id, base.id) == base
    assert await store.list_knowledge_bases(org.id) == [base]
    async with store.transaction() as tx:
        assert await tx.delete_knowledge_base(org.id, base.id)
    assert await store.get_knowledge_base(org.id, base.id) is None
    assert await store.get_knowledge_document(org.id, kept.id) is None
    assert await store.search_knowledge(org.id, [base.id], ["flu"], 3) == []
    assert await store.knowledge_use(org.id) == type(use)(0, 0, 0, 0)


async def test_a_rare_word_is_not_buried_by_a_common_one(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL ranks the chunks its rarer words reach (here at most 4 chunks: the bound made
    small); SQLite's bm25 weighs rare words by itself. Either way the chunks that name the
    vaccination come first, though "appointment" is said more often elsewhere (which
    PostgreSQL's ``ts_rank``, blind to how rare a word is, ranks higher)."""
    monkeypatch.setattr(sql_knowledge, "_RANKED_AT_MOST", 4)
    org = await seed_org(store)
    base = await _base(store, org.id)
    busy = [f"Appointment {n}: appointment, appointment and appointment desk." for n in range(12)]
    named = [f"Vaccination {n} is booked online." for n in range(3)]
    await _document(store, base, busy + named)

    found = await store.search_knowledge(org.id, [base.id], ["appointment", "vaccination"], 3)
    assert sorted(h.text for h in found) == sorted(named)
    # more wanted than the rare word reaches: every word chooses, the common one fills up
    found = await store.search_knowledge(org.id, [base.id], ["appointment", "vaccination"], 5)
    assert len(found) == 5
    assert {h.text for h in found} & set(busy)


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"])  # SQLite's FTS5 counts words by itself
async def test_postgres_counts_each_base_s_words_as_documents_come_and_go(
    store: Store, store_url: str
) -> None:
    org = await seed_org(store)
    base, second = await _base(store, org.id), await _base(store, org.id, "Billing")
    document = await _document(store, base, FAQ)
    await _document(store, base, ["Flu shots are given on Saturdays at the clinic."])
    await _document(store, second, ["Invoices are sent by the clinic."])

    conn = await asyncpg.connect(store_url)
    try:

        async def kept() -> dict[tuple[str, str], int]:
            rows = await conn.fetch("SELECT knowledge_base_id, lexeme, chunks FROM knowledge_terms")
            return {(r[0], r[1]): r[2] for r in rows}

        async def recounted() -> dict[tuple[str, str], int]:
            rows = await conn.fetch(
                "SELECT knowledge_base_id, lexeme, count(*) FROM knowledge_chunks,"
                " unnest(tsvector_to_array(words)) AS lexeme GROUP BY 1, 2"
            )
            return {(r[0], r[1]): r[2] for r in rows}

        counts = await kept()
        assert counts[(base.id, "clinic")] == 2  # the opening hours and the flu shots
        assert counts[(second.id, "clinic")] == 1
        assert counts == await recounted()

        async with store.transaction() as tx:
            assert await tx.delete_knowledge_document(org.id, document.id)
        counts = await kept()
        assert counts[(base.id, "clinic")] == 1
        assert (base.id, "prescript") not in counts  # no zero left behind
        assert counts == await recounted()

        # the migration's fill of a database that had chunks before it counts the same
        await conn.execute("DELETE FROM knowledge_terms")
        fill = next(m for m in load_migrations("postgres") if m.name == "knowledge_terms")
        await conn.execute(fill.statements[-1])
        assert await kept() == counts

        async with store.transaction() as tx:
            assert await tx.delete_knowledge_base(org.id, base.id)
        assert {b for b, _ in await kept()} == {second.id}
    finally:
        await conn.close()
