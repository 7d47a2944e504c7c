"""The OpenAPI description of an assistant's tools and of ``/tool-templates``."""

from __future__ import annotations

from voicedock.api.openapi_schema import ID, PATH_ID, TEXT, TIME, Schema, obj, operation, ref
from voicedock.calls.control import TRANSFER_MODES
from voicedock.calls.tool_config import TEMPLATE_ID, TOOL_TYPES

_TOOL_PROPS: dict[str, Schema] = {
    "type": {"enum": list(TOOL_TYPES)},
    "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
    "description": TEXT,
    "parameters": {"type": "object", "description": "A JSON Schema of type object."},
    "server": obj({"url": {"type": "string"}}, ("url",)),
    "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": 120},
    "destinations": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    "mode": {"enum": list(TRANSFER_MODES)},
    "message": TEXT,
}
TOOL: Schema = obj(_TOOL_PROPS)
TOOL_ITEM: Schema = {"anyOf": [TOOL, obj({TEMPLATE_ID: ID}, (TEMPLATE_ID,))]}

TOOL_TEMPLATE_SCHEMAS: dict[str, Schema] = {
    "Tool": TOOL,
    "ToolTemplate": obj(
        {"id": {"type": "string"}, **_TOOL_PROPS, "created_at": TIME, "updated_at": TIME},
        ("id", "type", "created_at", "updated_at"),
        strict=False,
    ),
    "ToolTemplateList": obj(
        {"tool_templates": {"type": "array", "items": ref("ToolTemplate")}},
        ("tool_templates",),
        strict=False,
    ),
}

TOOL_TEMPLATE_PATHS: dict[str, Schema] = {
    "/tool-templates": {
        "get": operation("List tool templates", ("200", "ToolTemplateList"), errors="401"),
        "post": operation(
            "Store a tool template (a tool the assistants reference by id)",
            ("201", "ToolTemplate"),
            body="Tool",
            errors="400 401 409 413",
        ),
    },
    "/tool-templates/{id}": {
        "get": operation(
            "Get a tool template", ("200", "ToolTemplate"), params=[PATH_ID], errors="401 404"
        ),
        "patch": operation(
            "Replace a tool template's tool (calls placed before keep theirs)",
            ("200", "ToolTemplate"),
            body="Tool",
            params=[PATH_ID],
        ),
        "delete": operation(
            "Delete a tool template", ("204", None), params=[PATH_ID], errors="401 404"
        ),
    },
}
