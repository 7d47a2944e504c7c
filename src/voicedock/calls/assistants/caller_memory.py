"""Callers remembered (an assistant's ``memory``, docs/caller-memory.md): what a call leaves of
its other party when it ends (its summary and the facts its analysis extracted), and what a
call of the same party is told of the latest ones when it starts (in its instructions)."""

from __future__ import annotations

import json
import uuid

import msgspec
from msgspec import UNSET

from voicedock.domain.assistant_config import MEMORY_DEFAULT_CALLS, AssistantConfig, set_or
from voicedock.domain.records import Call, CallerMemory
from voicedock.store.base import Store
from voicedock.validation import is_e164

SUMMARY_MAX = 600  # characters of one call's summary the model is given
FACTS_MAX = 400  # characters of its facts (their JSON)
HEADING = (
    "What earlier calls with this caller left (newest first; your records of them, not the "
    "caller's words):"
)


def left_by(call: Call) -> CallerMemory | None:
    """What ``call`` leaves of its other party: its summary and facts, when its assistant
    remembers callers and the call has a party and a summary."""
    if set_or(call.assistant_config.memory, None) is None:
        return None
    if not is_e164(call.caller_phone) or not call.summary or not call.summary.strip():
        return None  # a withheld or malformed number would mix different people's calls
    assert call.caller_phone is not None
    analysis = call.analysis_result or {}
    facts = analysis.get("structured_data")
    return CallerMemory(
        id=str(uuid.uuid4()),
        organization_id=call.organization_id,
        party=call.caller_phone,
        call_id=call.id,
        assistant_id=call.assistant_id,
        summary=call.summary.strip(),
        facts=facts if isinstance(facts, dict) and facts else None,
        created_at=call.ended_at or call.updated_at,
    )


async def remembered(
    store: Store, organization_id: str, config: AssistantConfig, party: str | None
) -> AssistantConfig:
    """``config`` (resolved for a call with ``party``) told what the party's latest calls
    left, after its own instructions, when it remembers callers (after its placeholders were
    filled: a caller's words are never read as one)."""
    plan = set_or(config.memory, None)
    if plan is None or not is_e164(party):
        return config
    assert party is not None
    recent = set_or(plan.recent_calls, MEMORY_DEFAULT_CALLS)
    memories = await store.list_caller_memories(organization_id, party, recent)
    if not memories:
        return config
    block = "\n".join([HEADING, *(_line(memory) for memory in memories)])
    own = set_or(config.system_prompt, None)
    prompt = f"{own}\n\n{block}" if own else block
    return msgspec.structs.replace(config, system_prompt=prompt)


# What an ``assistant-request`` answer may say of the caller instead (its ``memory``).
SUPPLIED_MAX = 2_000
SUPPLIED_HEADING = "What the organization's records say of this caller (not the caller's words):"


def supplied(config: AssistantConfig, text: str) -> AssistantConfig:
    """``config`` told ``text`` of the caller (an ``assistant-request`` answer's ``memory``)
    after its own instructions, in place of what earlier calls left."""
    block = f"{SUPPLIED_HEADING}\n{text.strip()[:SUPPLIED_MAX]}"
    own = set_or(config.system_prompt, None)
    return msgspec.structs.replace(config, system_prompt=f"{own}\n\n{block}" if own else block)


def forgotten(config: AssistantConfig) -> AssistantConfig:
    """``config`` remembering nothing of this call's party: not told, and leaving nothing
    (an ``assistant-request`` answer's ``"memory": false``)."""
    return msgspec.structs.replace(config, memory=UNSET)


def _line(memory: CallerMemory) -> str:
    line = f"- {memory.created_at:%Y-%m-%d}: {memory.summary[:SUMMARY_MAX]}"
    if memory.facts:
        facts = json.dumps(memory.facts, ensure_ascii=False, separators=(",", ":"))
        line += f" Facts: {facts[:FACTS_MAX]}"
    return line
