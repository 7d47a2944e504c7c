"""The OpenAPI description of an assistant's tools and of ``/tool-templates``."""

from __future__ import annotations

from voicedock.api.openapi_schema import (
    PATH_ID,
    TEXT,
    TIME,
    Schema,
    nullable,
    obj,
    operation,
    ref,
)
from voicedock.calls.control import TRANSFER_MODES
from voicedock.calls.tool_config import (
    END_CALL,
    SEND_DTMF,
    TEMPLATE_ID,
    TOOL_TYPES,
    TRANSFER_CALL,
    WEBHOOK,
)
from voicedock.domain.tenant_schemas import MAX_DEPTH, MAX_SCHEMA_BYTES

_NAME: Schema = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
_COMMON: dict[str, Schema] = {
    "name": {**nullable(_NAME), "description": "A built-in tool's: default its type"},
    "description": nullable(TEXT),
}
_WEBHOOK: dict[str, Schema] = {
    "type": {"const": WEBHOOK, "description": "the default"},
    "name": _NAME,
    "description": nullable(TEXT),
    "parameters": nullable(
        {
            "type": "object",
            "properties": {"type": {"const": "object"}},
            "description": "A JSON Schema of type object (bounded like an analysis plan's "
            f"structured_data_schema: {MAX_SCHEMA_BYTES} bytes, {MAX_DEPTH} levels).",
        }
    ),
    "server": nullable(
        obj({"url": {"type": "string", "pattern": "^https?://"}}, ("url",))
        | {
            "description": "The tool's own server (else the organization's tool-calls "
            "webhook); on a host the operator's egress policy allows (else 422 URL refused, "
            "also for a URL without a host)."
        }
    ),
    "timeout_seconds": nullable({"type": "integer", "minimum": 1, "maximum": 120}),
}
_TRANSFER: dict[str, Schema] = {
    "type": {"const": TRANSFER_CALL},
    **_COMMON,
    "destinations": {
        "type": "array",
        "items": {"type": "string", "minLength": 1, "maxLength": 80},
        "minItems": 1,
    },
    "mode": nullable({"enum": list(TRANSFER_MODES)}),
    "message": nullable(TEXT),
}
# One tool; its type names the fields it takes (calls/tool_config.py).
TOOL: Schema = {
    "oneOf": [
        obj(_WEBHOOK, ("name",)),
        obj({"type": {"const": END_CALL}, **_COMMON}, ("type",)),
        obj(_TRANSFER, ("type", "destinations")),
        obj({"type": {"const": SEND_DTMF}, **_COMMON}, ("type",)),
    ]
}
_TEMPLATE_REF = obj(
    {
        TEMPLATE_ID: {
            "type": "string",
            "minLength": 1,
            "maxLength": 100,
            "description": "A tool template of the organization (POST /tool-templates); one "
            "that does not exist is a 400 when a call is placed with it.",
        }
    },
    (TEMPLATE_ID,),
)
TOOL_ITEM: Schema = {"anyOf": [TOOL, _TEMPLATE_REF]}
_TOOL_PROPS: dict[str, Schema] = {
    **_WEBHOOK,
    **_TRANSFER,
    "type": {"enum": list(TOOL_TYPES)},
    "name": nullable(_NAME),
}

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
            errors="400 401 409 413 422",
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
            errors="400 401 404 413 422",
        ),
        "delete": operation(
            "Delete a tool template", ("204", None), params=[PATH_ID], errors="401 404"
        ),
    },
}
