"""Knowledge bases on both backends: documents and their chunks stored, found by full-text
search (stemmed words, the best chunk first), scoped to the organization and the bases named,
counted for the operator's bounds, and gone with their document or base."""

from __future__ import annotations

import pytest

from voicedock.domain.knowledge import KnowledgeBase, KnowledgeChunk, KnowledgeDocument
from voicedock.store import Store

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
