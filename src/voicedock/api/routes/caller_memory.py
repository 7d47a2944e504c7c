"""``/callers/{number}/memory``: what an organization's calls left of a caller (an assistant's
``memory``), listed, corrected, erased whole or one by one; each edit and erasure in the audit
trail."""

from __future__ import annotations

import msgspec
from aiohttp import web
from msgspec import UnsetType

from voicedock.api.audit import Audited
from voicedock.api.body import read_json
from voicedock.api.models.base import parse, reply
from voicedock.api.models.caller_memory import (
    FACTS_BYTES,
    CallerMemory,
    CallerMemoryEdit,
    CallerMemoryList,
)
from voicedock.api.resources import caller_of
from voicedock.errors import BadRequest, NotFound
from voicedock.validation import is_e164

routes = web.RouteTableDef()

_MEMORY = "/callers/{number}/memory"
_LISTED = 100  # a caller's memories listed (a call gives the model at most 10)
AUDITED = Audited("caller_memory")


def _number(request: web.Request) -> str:
    number = request.match_info["number"]
    if not is_e164(number):
        raise BadRequest("number must be E.164, such as +31612345678")
    return number


@routes.get(_MEMORY)
async def list_memory(request: web.Request) -> web.Response:
    caller = caller_of(request)
    number = _number(request)
    memories = await caller.store.list_caller_memories(caller.organization_id, number, _LISTED)
    return reply(CallerMemoryList(number=number, memories=[CallerMemory.of(m) for m in memories]))


@routes.delete(_MEMORY)
async def erase_memory(request: web.Request) -> web.Response:
    """Everything the calls left of the caller: later calls are told nothing of earlier ones
    (the calls' own records stay, with their retention)."""
    caller = caller_of(request).auditing(AUDITED, "deleted")
    number = _number(request)
    async with caller.store.transaction() as tx:
        await tx.delete_caller_memories(caller.organization_id, number)
        await caller.record(tx, None)
    return web.Response(status=204)


@routes.patch(f"{_MEMORY}/{{memory_id}}")
async def edit_one(request: web.Request) -> web.Response:
    """A memory corrected (what the next calls are told of the caller)."""
    caller = caller_of(request).auditing(AUDITED, "updated")
    number, memory_id = _number(request), request.match_info["memory_id"]
    body = await read_json(request, caller.service.settings.server.max_body_bytes)
    edit = parse(body, CallerMemoryEdit)
    memory = await caller.store.get_caller_memory(caller.organization_id, number, memory_id)
    if memory is None:
        raise _not_found()
    if not isinstance(edit.summary, UnsetType):
        if not edit.summary.strip():
            raise BadRequest("summary must not be blank")
        memory.summary = edit.summary.strip()
    if not isinstance(edit.facts, UnsetType):
        if edit.facts is not None and len(msgspec.json.encode(edit.facts)) > FACTS_BYTES:
            raise BadRequest(f"facts must be at most {FACTS_BYTES} bytes as JSON")
        memory.facts = edit.facts or None
    async with caller.store.transaction() as tx:
        await tx.update_caller_memory(memory)
        await caller.record(tx, memory.id)
    return reply(CallerMemory.of(memory))


def _not_found() -> NotFound:
    return NotFound("the caller has no such memory", error="Caller memory not found")


@routes.delete(f"{_MEMORY}/{{memory_id}}")
async def erase_one(request: web.Request) -> web.Response:
    caller = caller_of(request).auditing(AUDITED, "deleted")
    number, memory_id = _number(request), request.match_info["memory_id"]
    async with caller.store.transaction() as tx:
        if not await tx.delete_caller_memories(caller.organization_id, number, memory_id):
            raise _not_found()
        await caller.record(tx, memory_id)
    return web.Response(status=204)
