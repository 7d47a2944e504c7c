"""Knowledge bases in assistant configurations: ``knowledge.knowledge_base_ids`` names the
organization's bases an assistant searches. Saving an assistant, and placing a call with a
transient one, checks that each base it names exists (``422 Unknown knowledge base``
otherwise); a base a saved assistant still names is not deleted
(``calls/assistants/referencing.py``), as a tool template one names is not."""

from __future__ import annotations

from collections.abc import Mapping

from voicedock.calls.assistants.config import KNOWLEDGE
from voicedock.domain.json import JsonValue
from voicedock.errors import Unprocessable
from voicedock.store.base import Store

KNOWLEDGE_BASE_IDS = "knowledge_base_ids"
UNKNOWN_KNOWLEDGE_BASE = "Unknown knowledge base"


def knowledge_base_ids(config: Mapping[str, JsonValue]) -> list[str]:
    """The knowledge bases ``config["knowledge"]`` names (none when it has no such setting)."""
    knowledge = config.get(KNOWLEDGE)
    if not isinstance(knowledge, dict):
        return []
    ids = knowledge.get(KNOWLEDGE_BASE_IDS)
    return [str(i) for i in ids] if isinstance(ids, list) else []


def uses_knowledge_base(config: Mapping[str, JsonValue], base_id: str) -> bool:
    """Whether ``config["knowledge"]["knowledge_base_ids"]`` names the knowledge base
    ``base_id``."""
    return base_id in knowledge_base_ids(config)


async def check_knowledge_refs(
    store: Store, organization_id: str, config: Mapping[str, JsonValue]
) -> None:
    """422 when ``config["knowledge"]`` names a knowledge base the organization does not
    have."""
    for i, base_id in enumerate(knowledge_base_ids(config)):
        if await store.get_knowledge_base(organization_id, base_id) is None:
            raise Unprocessable(
                f"{KNOWLEDGE}.{KNOWLEDGE_BASE_IDS}[{i}]: no knowledge base with this id",
                error=UNKNOWN_KNOWLEDGE_BASE,
            )


__all__ = [
    "KNOWLEDGE_BASE_IDS",
    "UNKNOWN_KNOWLEDGE_BASE",
    "check_knowledge_refs",
    "knowledge_base_ids",
    "uses_knowledge_base",
]
