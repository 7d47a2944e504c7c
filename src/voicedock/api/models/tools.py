"""An assistant's tools and ``/tool-templates`` (a tool stored once, referenced by id).

A tool's ``type`` names the fields it takes (calls/tools/config.py checks what they mean):
``webhook`` (the default), ``end_call``, ``transfer_call``, ``send_dtmf``,
``collect_secure_digits``, ``mcp`` (an MCP server's tools; not a template's)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from msgspec import UNSET, Meta, UnsetType

from voicedock.api.models.base import Body, Reply, parse, template_reply
from voicedock.api.models.field_types import Text, Time
from voicedock.api.models.operations import Schema, owned_paths, ref
from voicedock.api.models.refusals import Reader
from voicedock.calls.control import TRANSFER_MODES
from voicedock.calls.tools.config import (
    HEADER_NAME_PATTERN,
    HEADER_VALUE_PATTERN,
    MAX_ALLOWED_TOOLS,
    MAX_DIGIT_TIMEOUT_SECONDS,
    MAX_HEADER_VALUE_CHARS,
    MAX_MCP_HEADERS,
    MAX_SECURE_DIGITS,
    SECURE_DIGITS_FIELDS,
    SECURE_TERMINATORS,
    TEMPLATE_ID,
    TEMPLATE_TOOL_TYPES,
    WEBHOOK,
)
from voicedock.domain.records import ToolTemplate as ToolTemplateRecord
from voicedock.domain.secret_fields import masked
from voicedock.domain.tenant_schemas import MAX_DEPTH, MAX_SCHEMA_BYTES

TransferMode = Literal["blind", "warm"]
ToolType = Literal["webhook", "end_call", "transfer_call", "send_dtmf", "collect_secure_digits"]
assert get_args(TransferMode) == TRANSFER_MODES
assert get_args(ToolType) == TEMPLATE_TOOL_TYPES
SecureTerminator = Literal["#", "*", ""]
assert get_args(SecureTerminator) == SECURE_TERMINATORS

Name = Annotated[str, Meta(pattern="^[A-Za-z0-9_-]{1,64}$")]
BuiltInName = Annotated[Name | None, Meta(description="A built-in tool's: default its type")]
Parameters = Annotated[
    dict[str, Any],
    Meta(
        description="A JSON Schema of type object (bounded like an analysis plan's "
        f"structured_data_schema: {MAX_SCHEMA_BYTES} bytes, {MAX_DEPTH} levels).",
        extra_json_schema={"properties": {"type": {"const": "object"}}},
    ),
]
TimeoutSeconds = Annotated[int, Meta(ge=1, le=120)]
Destinations = Annotated[
    list[Annotated[str, Meta(min_length=1, max_length=80)]], Meta(min_length=1)
]


class ToolServer(Body, kw_only=True):
    """The tool's own server (else the organization's tool-calls webhook); on a host the
    operator's egress policy allows (else 400 URL refused, also for a URL without a host)."""

    url: Annotated[str, Meta(pattern="^https?://")]


# A tool's optional fields are UNSET when left out (its stored copy keeps what was sent, null
# included: calls/tools/config.py check_tool); the document states their default, null
# (Body.DEFAULTS).


class WebhookTool(Body, kw_only=True):
    DEFAULTS: ClassVar[dict[str, None]] = dict.fromkeys(
        ("description", "parameters", "server", "timeout_seconds")
    )

    type: Annotated[Literal["webhook"], Meta(description="the default")] = "webhook"
    name: Name
    description: Text | UnsetType | None = UNSET
    parameters: Parameters | UnsetType | None = UNSET
    server: ToolServer | UnsetType | None = UNSET
    timeout_seconds: TimeoutSeconds | UnsetType | None = UNSET


class _BuiltInTool(Body, kw_only=True):
    # What every built-in tool takes; each names its own type (its fields follow).
    DEFAULTS: ClassVar[dict[str, None]] = dict.fromkeys(("name", "description"))

    type: str
    name: BuiltInName | UnsetType = UNSET
    description: Text | UnsetType | None = UNSET


class EndCallTool(_BuiltInTool, kw_only=True):
    type: Literal["end_call"]


class TransferCallTool(_BuiltInTool, kw_only=True):
    DEFAULTS: ClassVar[dict[str, None]] = dict.fromkeys(("name", "description", "mode", "message"))

    type: Literal["transfer_call"]
    destinations: Destinations
    mode: TransferMode | UnsetType | None = UNSET
    message: Text | UnsetType | None = UNSET


class SendDtmfTool(_BuiltInTool, kw_only=True):
    type: Literal["send_dtmf"]


DigitCount = Annotated[int, Meta(ge=1, le=MAX_SECURE_DIGITS)]
DigitTimeout = Annotated[
    int, Meta(ge=1, le=MAX_DIGIT_TIMEOUT_SECONDS, description="for each key, the first too")
]


class CollectSecureDigitsTool(_BuiltInTool, kw_only=True):
    """Keypad digits the model never sees (a card number, a PIN): collected in secure mode
    (not recorded, transcribed, streamed or logged) and sent only to the tool's server in
    the tool-calls request; the model reads the server's answer. docs/privacy.md."""

    DEFAULTS: ClassVar[dict[str, None]] = dict.fromkeys(SECURE_DIGITS_FIELDS)

    type: Literal["collect_secure_digits"]
    prompt: Text | UnsetType | None = UNSET
    min_digits: DigitCount | UnsetType | None = UNSET
    max_digits: DigitCount | UnsetType | None = UNSET
    terminator: Annotated[SecureTerminator, Meta(description='"" : none')] | UnsetType | None = (
        UNSET
    )
    digit_timeout_seconds: DigitTimeout | UnsetType | None = UNSET
    server: ToolServer | UnsetType | None = UNSET
    timeout_seconds: TimeoutSeconds | UnsetType | None = UNSET


class McpServer(Body, kw_only=True):
    """An MCP server (streamable HTTP), on a host the operator's egress policy allows (else
    400 URL refused). ``headers`` are secrets: they read masked (``****`` and the last 4
    characters) and are kept when sent back masked, never sent to a changed url (422)."""

    url: Annotated[str, Meta(pattern="^https?://")]
    headers: (
        Annotated[
            dict[
                Annotated[str, Meta(pattern=HEADER_NAME_PATTERN)],
                Annotated[
                    str,
                    Meta(
                        min_length=1,
                        max_length=MAX_HEADER_VALUE_CHARS,
                        pattern=HEADER_VALUE_PATTERN,
                    ),
                ],
            ],
            Meta(
                max_length=MAX_MCP_HEADERS,
                description="Sent with every request (Authorization, X-Api-Key...); not "
                "Accept, Content-Type, Host or the MCP session headers, which voicedock sets.",
            ),
        ]
        | UnsetType
        | None
    ) = UNSET


class McpTool(Body, kw_only=True):
    """An MCP server's tools: listed when a call starts, each offered under its own name (a
    server that does not answer in time offers none; the call goes on), called with the
    tool's timeout. docs/tools.md."""

    DEFAULTS: ClassVar[dict[str, None]] = dict.fromkeys(("allowed_tools", "timeout_seconds"))

    type: Literal["mcp"]
    server: McpServer
    allowed_tools: (
        Annotated[
            list[Name],
            Meta(max_length=MAX_ALLOWED_TOOLS, description="Only these are offered (else all)"),
        ]
        | UnsetType
        | None
    ) = UNSET
    timeout_seconds: TimeoutSeconds | UnsetType | None = UNSET


class ToolTemplateRef(Body, kw_only=True):
    template_id: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=100,
            description="A tool template of the organization (POST /tool-templates); one that "
            "does not exist is a 400 when a call is placed with it.",
        ),
    ]


assert TEMPLATE_ID in ToolTemplateRef.__struct_fields__
_TOOLS: dict[str, type[Body]] = {
    "webhook": WebhookTool,
    "end_call": EndCallTool,
    "transfer_call": TransferCallTool,
    "send_dtmf": SendDtmfTool,
    "collect_secure_digits": CollectSecureDigitsTool,
    "mcp": McpTool,
}
# An item of an assistant's tools: a tool, or a template's id.
TOOL_ITEM: Schema = {"anyOf": [ref("Tool"), ref(ToolTemplateRef)]}


def parse_tool(value: object, where: str = "body", *, words: Reader | None = None) -> Body:
    """One tool as its type's model (a type it does not know: a webhook tool's); ``words``:
    as ``parse``'s."""
    kind = value.get("type", WEBHOOK) if isinstance(value, dict) else WEBHOOK
    # A type that is no string (an object, a list) is refused by the webhook tool's model.
    model = _TOOLS.get(kind, WebhookTool) if isinstance(kind, str) else WebhookTool
    return parse(value, model, where, words=words)


class ToolTemplate(Reply, kw_only=True):
    id: str
    type: ToolType
    name: Name | UnsetType | None = UNSET
    description: Text | UnsetType | None = UNSET
    parameters: Parameters | UnsetType | None = UNSET
    server: ToolServer | UnsetType | None = UNSET
    timeout_seconds: TimeoutSeconds | UnsetType | None = UNSET
    destinations: Destinations | UnsetType = UNSET
    mode: TransferMode | UnsetType | None = UNSET
    message: Text | UnsetType | None = UNSET
    prompt: Text | UnsetType | None = UNSET
    min_digits: DigitCount | UnsetType | None = UNSET
    max_digits: DigitCount | UnsetType | None = UNSET
    terminator: SecureTerminator | UnsetType | None = UNSET
    digit_timeout_seconds: DigitTimeout | UnsetType | None = UNSET
    version: Annotated[
        int, Meta(ge=1, description="Its current version (GET /tool-templates/{id}/versions)")
    ]
    created_at: Time
    updated_at: Time

    @classmethod
    def of(cls, template: ToolTemplateRecord) -> ToolTemplate:
        # A URL's credentials, stored before they were refused, masked.
        stored = {**masked(template.tool), "version": template.version}
        return template_reply(cls, template.id, stored, template.created_at, template.updated_at)


class ToolTemplateList(Reply, kw_only=True):
    tool_templates: list[ToolTemplate]


PATHS: dict[str, Schema] = owned_paths(
    "/tool-templates",
    a_record="a tool template",
    reply=ToolTemplate,
    listing=ToolTemplateList,
    create=("Store a tool template (a tool the assistants reference by id)", "TemplateTool"),
    update=("Replace a tool template's tool (calls placed before keep theirs)", "TemplateTool"),
    held_while="an assistant references it",
)
MODELS = (ToolTemplateRef, ToolTemplate, ToolTemplateList)
# One tool, whichever its type.
# A tool of an assistant; a template's (an MCP server's tools are an assistant's alone).
UNIONS: dict[str, tuple[type[Body], ...]] = {
    "Tool": tuple(_TOOLS.values()),
    "TemplateTool": tuple(_TOOLS[kind] for kind in TEMPLATE_TOOL_TYPES),
}
