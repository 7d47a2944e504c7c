"""A call's knowledge bases (``calls/tools/knowledge.py``) over a real SQLite store: the
``search_knowledge`` tool offered and answered from the chunks found (numbered, with their
document's name), each search told on the call's events for its record, a search that finds
nothing or fails is a result the model can speak about; ``every_turn`` offers no tool and
searches the turn's words instead."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from voicedock.calls.tools.executor import CallTools
from voicedock.calls.tools.knowledge import CallKnowledge
from voicedock.domain.assistant_config import Knowledge
from voicedock.domain.knowledge import KnowledgeBase, KnowledgeChunk, KnowledgeDocument
from voicedock.domain.records import Call, CallStatus, Direction, Organization
from voicedock.errors import StoreUnavailable
from voicedock.knowledge.embeddings import Embeddings, fixed_endpoint
from voicedock.knowledge.search import KnowledgeSearch
from voicedock.pipeline.dialogue.events import CallEvents, KnowledgeRetrieved
from voicedock.pipeline.frames import ToolCall
from voicedock.store import Store, open_store

pytestmark = pytest.mark.unit

FAQ = [
    "Opening hours\nThe clinic is open Monday to Friday from eight to six.",
    "Prescriptions\nRepeat prescriptions are ready two working days after you ask.",
]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite:///{tmp_path / 'k.db'}")
    await opened.migrate()
    org = Organization(id="org-1", name="Clinic")
    base = KnowledgeBase(id="kb-1", organization_id=org.id, name="FAQ")
    document = KnowledgeDocument("doc-1", org.id, base.id, "faq.md", "text/markdown", 1, 1, 2)
    async with opened.transaction() as tx:
        await tx.insert_organization(org)
        await tx.insert_knowledge_base(base)
        await tx.insert_knowledge_document(
            document, [KnowledgeChunk(document.id, i, t) for i, t in enumerate(FAQ)]
        )
    try:
        yield opened
    finally:
        await opened.aclose()


def _knowledge(store: Store, events: CallEvents, **plan: object) -> CallKnowledge:
    typed = msgspec.convert({"knowledge_base_ids": ["kb-1"], **plan}, Knowledge)
    return CallKnowledge(
        KnowledgeSearch(store, Embeddings(None), fixed_endpoint(None)), "org-1", typed, events
    )


def _tools(knowledge: CallKnowledge) -> CallTools:
    call = Call(
        id="call-1",
        organization_id="org-1",
        direction=Direction.OUTBOUND,
        status=CallStatus.IN_PROGRESS,
        caller_phone="+15551230000",
        assistant_phone="+15559870000",
    )
    return CallTools(
        call, [], server=None, pbx=object(), transfer=lambda _t: None, knowledge=knowledge
    )  # type: ignore[arg-type]


async def test_the_tool_is_offered_and_answers_from_the_chunks_found(store: Store) -> None:
    events, told = CallEvents(), []
    events.subscribe(KnowledgeRetrieved, told.append)
    tools = _tools(_knowledge(store, events))
    assert [spec.name for spec in tools.found()] == ["search_knowledge"]
    assert tools.turn_knowledge() is None  # the model asks; the turns are not searched
    query = json.dumps({"query": "how long for a repeat prescription"})
    result = await tools.run(ToolCall("t1", "search_knowledge", query))
    assert not result.error
    assert result.content.startswith("[1] (faq.md) Prescriptions\nRepeat prescriptions")
    assert "Opening hours" not in result.content
    (event,) = told
    assert event.retrieval["retrieval"] == "tool"
    chunk = event.retrieval["chunks"][0]
    assert (chunk["document_id"], chunk["position"], chunk["knowledge_base_id"]) == (
        "doc-1",
        1,
        "kb-1",
    )
    assert 0 <= event.retrieval["took_ms"] < 1000

    nothing = await tools.run(ToolCall("t2", "search_knowledge", '{"query": "helicopter"}'))
    assert (nothing.content, nothing.error) == (
        "Nothing in the knowledge base matches that.",
        False,
    )
    bad = await tools.run(ToolCall("t3", "search_knowledge", '{"query": 3}'))
    assert bad.error


async def test_every_turn_offers_no_tool_and_searches_the_words(store: Store) -> None:
    events, told = CallEvents(), []
    events.subscribe(KnowledgeRetrieved, told.append)
    tools = _tools(_knowledge(store, events, retrieval="every_turn", max_chunks=1))
    assert tools.found() == ()
    turn = tools.turn_knowledge()
    assert turn is not None
    found = await turn.for_turn("Is the clinic open on Friday?")
    assert found is not None
    assert "[1] (faq.md) Opening hours" in found
    assert "[2]" not in found  # max_chunks
    assert await turn.for_turn("helicopter rides") is None
    assert [e.retrieval["retrieval"] for e in told] == ["every_turn", "every_turn"]
    assert told[1].retrieval["chunks"] == []
    offered = await tools.run(ToolCall("t1", "search_knowledge", '{"query": "open"}'))
    assert offered.error  # not a tool of this call


async def test_a_failing_store_is_a_result_the_model_reads(store: Store) -> None:
    class Down:
        async def search_knowledge(self, *args: object) -> list[object]:
            raise StoreUnavailable("the database is down")

        async def get_knowledge_base(self, *args: object) -> None:
            raise StoreUnavailable("the database is down")

    events = CallEvents()
    tools = _tools(_knowledge(Down(), events))  # type: ignore[arg-type]
    result = await tools.run(ToolCall("t1", "search_knowledge", '{"query": "prescription"}'))
    assert result.error
    assert result.content == "The knowledge base could not be searched."
