"""Tool templates (CRUD per organization): tools stored once, referenced by the assistants'
``tools`` as ``{"template_id": ...}``.

A template's body is one tool, exactly as an item of an assistant's ``tools``; the answer adds
``id``, ``created_at`` and ``updated_at``. A PATCH body replaces the tool.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from voicedock.api.body import read_json
from voicedock.api.keys import SERVICE
from voicedock.api.middleware import organization_of
from voicedock.api.models.base import reply
from voicedock.api.models.tools import ToolTemplate as ToolTemplateReply
from voicedock.api.models.tools import ToolTemplateList, parse_tool
from voicedock.calls.tenant_urls import check_tool_url
from voicedock.calls.tool_config import check_tool
from voicedock.domain.records import JsonObject, ToolTemplate, utcnow
from voicedock.errors import Conflict, NotFound
from voicedock.validation import is_token

routes = web.RouteTableDef()

MAX_TEMPLATES_PER_ORGANIZATION = 500


async def _tool(request: web.Request) -> JsonObject:
    service = request.app[SERVICE]
    body = await read_json(request, service.settings.server.max_body_bytes)
    tool = check_tool(body, "body")
    parse_tool(body)  # and it is what the document says a tool is
    check_tool_url(tool, "body", service.engine.egress_policy)
    return tool


async def _template(request: web.Request) -> ToolTemplate:
    template_id = request.match_info["id"]
    found = None
    if is_token(template_id):
        store = request.app[SERVICE].store
        found = await store.get_tool_template(organization_of(request), template_id)
    if found is None:
        raise NotFound("no tool template with this id", error="Tool template not found")
    return found


@routes.get("/tool-templates")
async def list_tool_templates(request: web.Request) -> web.Response:
    items = await request.app[SERVICE].store.list_tool_templates(organization_of(request))
    return reply(ToolTemplateList(tool_templates=[ToolTemplateReply.of(t) for t in items]))


@routes.post("/tool-templates")
async def create_tool_template(request: web.Request) -> web.Response:
    store = request.app[SERVICE].store
    org_id = organization_of(request)
    tool = await _tool(request)
    if len(await store.list_tool_templates(org_id)) >= MAX_TEMPLATES_PER_ORGANIZATION:
        raise Conflict(f"at most {MAX_TEMPLATES_PER_ORGANIZATION} tool templates")
    template = ToolTemplate(id=str(uuid.uuid4()), organization_id=org_id, tool=tool)
    async with store.transaction() as tx:
        await tx.insert_tool_template(template)
    return reply(ToolTemplateReply.of(template), 201)


@routes.get("/tool-templates/{id}")
async def get_tool_template(request: web.Request) -> web.Response:
    return reply(ToolTemplateReply.of(await _template(request)))


@routes.patch("/tool-templates/{id}")
async def update_tool_template(request: web.Request) -> web.Response:
    store = request.app[SERVICE].store
    template = await _template(request)
    template.tool = await _tool(request)
    template.updated_at = utcnow()
    async with store.transaction() as tx:
        await tx.update_tool_template(template)
    return reply(ToolTemplateReply.of(template))


@routes.delete("/tool-templates/{id}")
async def delete_tool_template(request: web.Request) -> web.Response:
    store = request.app[SERVICE].store
    template = await _template(request)
    async with store.transaction() as tx:
        await tx.delete_tool_template(template.organization_id, template.id)
    return web.Response(status=204)
