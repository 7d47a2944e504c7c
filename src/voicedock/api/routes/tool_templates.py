"""Tool templates (CRUD per organization): tools stored once, referenced by the assistants'
``tools`` as ``{"template_id": ...}``.

A template's body is one tool, exactly as an item of an assistant's ``tools``; the answer adds
``id``, ``version``, ``created_at`` and ``updated_at``. A PATCH body replaces the tool, as the
template's next version (``/tool-templates/{id}/versions``, ``/rollback``:
``api/record_versions.py``). A template an assistant references is not deleted (409).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable

from aiohttp import web

from voicedock.api.audit import Audited
from voicedock.api.models.base import sent
from voicedock.api.models.record_versions import ToolTemplateVersionDetail
from voicedock.api.models.tools import ToolTemplate as ToolTemplateReply
from voicedock.api.models.tools import parse_tool as parse_tool_model
from voicedock.api.record_versions import RecordVersions
from voicedock.api.resources import (
    Caller,
    Resource,
    mount,
    templates,
)
from voicedock.calls.assistants.urls import check_tool_url
from voicedock.calls.tools.config import MCP, check_template_tool
from voicedock.calls.tools.templates import uses_tool_template
from voicedock.domain.json import JsonObject
from voicedock.domain.record_versions import VersionedKind, same_settings
from voicedock.domain.records import ToolTemplate, utcnow
from voicedock.errors import BadRequest
from voicedock.store.base import Transaction

routes = web.RouteTableDef()


def parse_tool(caller: Caller, body: object) -> JsonObject:
    """One tool, as an item of an assistant's ``tools`` (its URL within the egress policy):
    decoded by its type's model, what it means checked (``check_template_tool``, which words
    a refusal where it refuses the body too); not an ``mcp`` tool."""
    if isinstance(body, dict) and body.get("type") == MCP:  # its headers: an assistant's secrets
        raise BadRequest("body.type: an mcp tool is given in an assistant's tools, not a template")
    tool = check_template_tool(sent(parse_tool_model(body, words=check_template_tool)), "body")
    check_tool_url(tool, "body", caller.service.engine.egress_policy)
    return tool


def _parse_new(caller: Caller, body: object) -> ToolTemplate:
    tool = parse_tool(caller, body)
    return ToolTemplate(id=str(uuid.uuid4()), organization_id=caller.organization_id, tool=tool)


def parse_replacement(caller: Caller, template: ToolTemplate, body: object) -> ToolTemplate:
    return dataclasses.replace(template, tool=parse_tool(caller, body), updated_at=utcnow())


def _update(tx: Transaction, template: ToolTemplate, by: str | None) -> Awaitable[None]:
    return tx.update_tool_template(template, by)


TOOL_TEMPLATES: Resource[ToolTemplate] = templates(
    path="/tool-templates",
    noun="tool template",
    serialize=ToolTemplateReply.of,
    lookup=lambda c, template_id: c.store.get_tool_template(c.organization_id, template_id),
    every=lambda c: c.store.list_tool_templates(c.organization_id),
    parse_new=_parse_new,
    parse_update=parse_replacement,
    insert=lambda tx, t, by: tx.insert_tool_template(t, by),
    update=_update,
    delete=lambda tx, t: tx.delete_tool_template(t.organization_id, t.id),
    used_by=lambda t, config: uses_tool_template(config, t.id),
    in_use="the tool template is in the tools of",
    remedy="remove it from their tools first",
    audit=Audited("tool_template"),
    unchanged=same_settings,
)
RESOURCES = (TOOL_TEMPLATES,)
mount(routes, *RESOURCES)
RecordVersions(
    resource=TOOL_TEMPLATES,
    kind=VersionedKind.TOOL_TEMPLATE,
    detail=ToolTemplateVersionDetail,
    record_field="tool_template",
    # The tool's rules and the egress policy as they are now, as for a PATCH's body.
    checked=lambda c, t: dataclasses.replace(t, tool=parse_tool(c, t.tool)),
    update=_update,
).mount(routes)
