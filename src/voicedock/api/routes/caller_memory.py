"""``/callers/{number}/memory``: what an organization's calls left of a caller (an assistant's
``memory``), listed, erased whole or one by one; each erasure in the audit trail."""

from __future__ import annotations

from aiohttp import web

from voicedock.api.audit import Audited
from voicedock.api.models.base import reply
from voicedock.api.models.caller_memory import CallerMemory, CallerMemoryList
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


@routes.delete(f"{_MEMORY}/{{memory_id}}")
async def erase_one(request: web.Request) -> web.Response:
    caller = caller_of(request).auditing(AUDITED, "deleted")
    number, memory_id = _number(request), request.match_info["memory_id"]
    async with caller.store.transaction() as tx:
        if not await tx.delete_caller_memories(caller.organization_id, number, memory_id):
            raise NotFound("the caller has no such memory", error="Caller memory not found")
        await caller.record(tx, memory_id)
    return web.Response(status=204)
