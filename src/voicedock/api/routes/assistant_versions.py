"""``/assistants/{id}/versions`` (list, one version with what it changed),
``POST /assistants/{id}/rollback`` (a version's settings the assistant's again, as its next
version, checked as a PATCH is: the provider rules, the egress policy, the references) and
``/assistants/{id}/traffic-split`` (its calls split between versions)."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from voicedock.api.body import read_json
from voicedock.api.models.assistant_versions import (
    VERSION_MAX,
    AssistantRollback,
    AssistantVersionList,
    TrafficSplit,
    version_detail,
    version_summary,
)
from voicedock.api.models.assistants import assistant_reply
from voicedock.api.models.base import parse, reply
from voicedock.api.resources import Caller, caller_of
from voicedock.api.routes.assistants import ASSISTANTS, store_changed_assistant
from voicedock.calls.assistants.config import resolve_provider
from voicedock.domain.assistant_config import config_json
from voicedock.domain.records import Assistant, AssistantVersion
from voicedock.domain.traffic_split import TrafficShare
from voicedock.errors import BadRequest, NotFound, Unprocessable
from voicedock.store.base import Store

routes = web.RouteTableDef()

_VERSIONS = f"{ASSISTANTS.item_path}/versions"
VERSION_NOT_FOUND = "Assistant version not found"


@routes.get(_VERSIONS)
async def list_versions(request: web.Request) -> web.Response:
    """The assistant's versions, newest first, each with the settings it changed."""
    caller = caller_of(request)
    assistant = await ASSISTANTS.fetch(request)
    versions = await caller.store.list_assistant_versions(caller.organization_id, assistant.id)
    earlier = [*versions[1:], None]
    return reply(
        AssistantVersionList(
            versions=[version_summary(v, e) for v, e in zip(versions, earlier, strict=True)]
        )
    )


@routes.get(f"{_VERSIONS}/{{version}}")
async def get_version(request: web.Request) -> web.Response:
    """One version: the assistant as it was, and what it changed of the version before."""
    caller = caller_of(request)
    assistant = await ASSISTANTS.fetch(request)
    version = await _version(caller.store, assistant, request.match_info["version"])
    before = await _version_or_none(caller.store, assistant, version.version - 1)
    return reply(version_detail(version, before, assistant))


@routes.post(f"{ASSISTANTS.item_path}/rollback")
async def rollback(request: web.Request) -> web.Response:
    """The version's settings (name, business name, active, configuration) as the assistant's
    next version; 404 for a version it never had."""
    caller = caller_of(request).auditing(ASSISTANTS.audit, "updated")
    assistant = await ASSISTANTS.fetch(request)
    body = await read_json(request, caller.service.settings.server.max_body_bytes)
    asked = parse(body, AssistantRollback)
    version = await _version(caller.store, assistant, str(asked.version))
    restored = version.restored(assistant)
    # What the operator's policy or the node refuses now is refused, as a PATCH would be.
    settings, egress = caller.service.settings, caller.service.engine.egress_policy
    resolve_provider(config_json(restored.config), settings.speech, egress)
    return reply(assistant_reply(await store_changed_assistant(caller, restored)))


_SPLIT = f"{ASSISTANTS.item_path}/traffic-split"
UNKNOWN_VERSION = "Unknown assistant version"


@routes.put(_SPLIT)
async def split_traffic(request: web.Request) -> web.Response:
    """The assistant's calls by reference split between the versions named, by weight; each
    version once (400) and one the assistant has (422 ``Unknown assistant version``)."""
    caller = caller_of(request).auditing(ASSISTANTS.audit, "updated")
    assistant = await ASSISTANTS.fetch(request)
    body = await read_json(request, caller.service.settings.server.max_body_bytes)
    split = parse(body, TrafficSplit)
    numbers = [share.version for share in split.versions]
    if len(set(numbers)) != len(numbers):
        raise BadRequest("versions: each version at most once", error="Duplicate version")
    for number in numbers:
        if await _version_or_none(caller.store, assistant, number) is None:
            raise Unprocessable(
                f"versions: the assistant has no version {number}", error=UNKNOWN_VERSION
            )
    shares = [TrafficShare(version=s.version, weight=s.weight) for s in split.versions]
    return reply(assistant_reply(await _split(caller, assistant, shares)))


@routes.delete(_SPLIT)
async def end_split(request: web.Request) -> web.Response:
    """No split: the assistant's calls run its current version."""
    caller = caller_of(request).auditing(ASSISTANTS.audit, "updated")
    assistant = await ASSISTANTS.fetch(request)
    return reply(assistant_reply(await _split(caller, assistant, None)))


async def _split(
    caller: Caller, assistant: Assistant, shares: list[TrafficShare] | None
) -> Assistant:
    split = dataclasses.replace(assistant, traffic_split=shares)
    async with caller.store.transaction() as tx:
        await tx.set_assistant_traffic_split(split)
        await caller.record(tx, split.id)
    return split


async def _version(store: Store, assistant: Assistant, number: str) -> AssistantVersion:
    """The version ``number`` names (digits, within the column's bound); 404 otherwise."""
    if not number.isascii() or not number.isdigit() or not 1 <= int(number) <= VERSION_MAX:
        raise _not_found()
    version = await _version_or_none(store, assistant, int(number))
    if version is None:
        raise _not_found()
    return version


async def _version_or_none(
    store: Store, assistant: Assistant, number: int
) -> AssistantVersion | None:
    if number < 1:
        return None
    return await store.get_assistant_version(assistant.organization_id, assistant.id, number)


def _not_found() -> NotFound:
    return NotFound("the assistant has no such version", error=VERSION_NOT_FOUND)
