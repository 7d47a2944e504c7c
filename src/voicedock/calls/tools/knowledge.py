"""A call's knowledge bases (its assistant's ``knowledge``): the model's ``search_knowledge``
tool, or each turn's words searched before the model is asked (``every_turn``,
``pipeline/tools.py`` ``TurnKnowledge``); each search on the call's events
(``KnowledgeRetrieved``: a ``knowledge`` call event with the chunks found and its time).

What the model reads is the chunks found, best first, each with its document's name; the
search's failure (the store unavailable) is a failed tool result, or nothing for the turn:
the call goes on. docs/knowledge.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from msgspec import UNSET

from voicedock.domain.assistant_config import AssistantConfig, Knowledge
from voicedock.domain.json import JsonObject, JsonValue
from voicedock.domain.knowledge import (
    BY_TOOL,
    DEFAULT_CHUNKS_PER_SEARCH,
    MAX_QUERY_CHARS,
    SEARCH_KNOWLEDGE,
    KnowledgeHit,
)
from voicedock.errors import StoreError
from voicedock.knowledge.search import Found, KnowledgeSearch
from voicedock.pipeline.dialogue.events import CallEvents, KnowledgeRetrieved
from voicedock.pipeline.tools import ToolResult, ToolSpec

log = logging.getLogger("voicedock.calls")
SPEC = ToolSpec(
    name=SEARCH_KNOWLEDGE,
    description="Search the organization's knowledge base (its documents: FAQ, policies, "
    "prices, opening hours) for what the caller asks. Call it before answering a question "
    "the instructions do not answer, with the question's key words.",
    parameters={
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "description": "What to look for, in a few words.",
                "maxLength": MAX_QUERY_CHARS,
            }
        },
        "required": ["query"],
    },
)
_FOUND_INTRO = "From the knowledge base (use it to answer when it applies; do not read it out):"


def knowledge_plan(config: AssistantConfig) -> Knowledge | None:
    """The assistant's ``knowledge``, if it has one."""
    return None if config.knowledge is UNSET else config.knowledge


class CallKnowledge:
    """The knowledge bases one call searches, told on its ``events``."""

    def __init__(
        self, searches: KnowledgeSearch, organization_id: str, plan: Knowledge, events: CallEvents
    ) -> None:
        """``searches``: the node's (``knowledge/search.py``)."""
        self._searches, self._organization_id, self._events = searches, organization_id, events
        self._bases = tuple(plan.knowledge_base_ids)
        self.retrieval = BY_TOOL if plan.retrieval is UNSET else plan.retrieval
        limit = plan.max_chunks
        self._limit = DEFAULT_CHUNKS_PER_SEARCH if limit is UNSET else limit

    def specs(self) -> tuple[ToolSpec, ...]:
        """The tool the model is offered (none when each turn is searched instead)."""
        return (SPEC,) if self.retrieval == BY_TOOL else ()

    async def tool(self, arguments: JsonObject) -> ToolResult:
        """The model's ``search_knowledge``."""
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            return ToolResult("The query must be a text.", error=True)
        found = await self._search(query)
        if found is None:
            return ToolResult("The knowledge base could not be searched.", error=True)
        if not found.hits:
            return ToolResult("Nothing in the knowledge base matches that.")
        return ToolResult(_read(found.hits))

    async def for_turn(self, words: str) -> str | None:
        """``TurnKnowledge``: the turn's words searched (``every_turn``)."""
        if not words.strip():
            return None
        found = await self._search(words)
        return None if found is None or not found.hits else f"{_FOUND_INTRO}\n\n{_read(found.hits)}"

    async def _search(self, query: str) -> Found | None:
        try:
            found = await self._searches.search(
                self._organization_id, self._bases, query, self._limit
            )
        except StoreError as exc:
            log.warning("knowledge search failed: %s", type(exc).__name__)
            return None
        self._events.emit(KnowledgeRetrieved(_record(self.retrieval, found)))
        return found


def _read(hits: Sequence[KnowledgeHit]) -> str:
    """The chunks as the model reads them: numbered, each with its document's name."""
    return "\n\n".join(f"[{i}] ({hit.document_name}) {hit.text}" for i, hit in enumerate(hits, 1))


def _record(retrieval: str, found: Found) -> JsonObject:
    chunks: list[JsonValue] = [
        {
            "knowledge_base_id": hit.knowledge_base_id,
            "document_id": hit.document_id,
            "document_name": hit.document_name,
            "position": hit.position,
            "score": round(hit.score, 6),
            "text": hit.text,
        }
        for hit in found.hits
    ]
    took_ms = round(found.took_ms, 3)
    return {"retrieval": retrieval, "by": found.by, "took_ms": took_ms, "chunks": chunks}


__all__ = ["SPEC", "CallKnowledge", "knowledge_plan"]
