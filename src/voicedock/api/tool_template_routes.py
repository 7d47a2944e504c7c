"""Tool templates (CRUD per organization): tools stored once, referenced by the assistants'
``tools`` as ``{"template_id": ...}``.

A template's body is one tool, exactly as an item of an assistant's ``tools``; the answer adds
``id``, ``created_at`` and ``updated_at``. A PATCH body replaces the tool.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from voicedock.api.resources import Caller, Create, Delete, Listing, Patch, Resource, created, mount
from voicedock.api.serialize import iso
from voicedock.calls.tenant_urls import check_tool_url
from voicedock.calls.tool_config import check_tool
from voicedock.domain.records import JsonObject, ToolTemplate, utcnow
from voicedock.errors import Conflict

routes = web.RouteTableDef()

MAX_TEMPLATES_PER_ORGANIZATION = 500


def template_json(template: ToolTemplate) -> JsonObject:
    return {
        "id": template.id,
        **template.tool,
        "created_at": iso(template.created_at),
        "updated_at": iso(template.updated_at),
    }


def parse_tool(caller: Caller, body: object) -> JsonObject:
    """One tool, as an item of an assistant's ``tools`` (its URL within the egress policy)."""
    tool = check_tool(body, "body")
    check_tool_url(tool, "body", caller.service.engine.egress_policy)
    return tool


async def _create(caller: Caller, tool: JsonObject) -> ToolTemplate:
    store = caller.service.store
    if len(await store.list_tool_templates(caller.organization_id)) >= (
        MAX_TEMPLATES_PER_ORGANIZATION
    ):
        raise Conflict(f"at most {MAX_TEMPLATES_PER_ORGANIZATION} tool templates")
    template = ToolTemplate(id=str(uuid.uuid4()), organization_id=caller.organization_id, tool=tool)
    async with store.transaction() as tx:
        await tx.insert_tool_template(template)
    return template


async def _replace(caller: Caller, template: ToolTemplate, tool: JsonObject) -> ToolTemplate:
    template.tool = tool
    template.updated_at = utcnow()
    async with caller.service.store.transaction() as tx:
        await tx.update_tool_template(template)
    return template


async def _delete(caller: Caller, template: ToolTemplate) -> None:
    async with caller.service.store.transaction() as tx:
        await tx.delete_tool_template(template.organization_id, template.id)


async def _list(caller: Caller) -> list[ToolTemplate]:
    return await caller.service.store.list_tool_templates(caller.organization_id)


async def _lookup(caller: Caller, template_id: str) -> ToolTemplate | None:
    return await caller.service.store.get_tool_template(caller.organization_id, template_id)


TOOL_TEMPLATES: Resource[ToolTemplate] = Resource(
    path="/tool-templates",
    plural="tool_templates",
    noun="tool template",
    title="Tool template not found",
    lookup=_lookup,
    serialize=template_json,
    list=Listing(run=_list),
    create=Create(parse=parse_tool, run=_create, reply=created(template_json)),
    patch=Patch(parse=lambda caller, _template, body: parse_tool(caller, body), run=_replace),
    delete=Delete(run=_delete),
)
RESOURCES = (TOOL_TEMPLATES,)
mount(routes, *RESOURCES)
