"""The ``tools`` of an assistant configuration: their strict shape, and what the model is
offered.

    {"type": "webhook", "name": "lookup_order", "description": "...",
     "parameters": {"type": "object", ...JSON Schema...},
     "server": {"url": "https://crm.example.com/tools"},      # optional: else the org's
     "timeout_seconds": 10}
    {"type": "end_call"}
    {"type": "transfer_call", "destinations": ["sales", "+31201234567"], "mode": "blind",
     "message": "Transferring you now."}
    {"type": "send_dtmf"}
    {"type": "collect_secure_digits", "prompt": "Please key in your card number, then hash.",
     "min_digits": 15, "max_digits": 19, "terminator": "#", "digit_timeout_seconds": 10,
     "server": {"url": "https://pay.example.com/tools"}, "timeout_seconds": 10}
    {"type": "mcp", "server": {"url": "https://crm.example.com/mcp",
                               "headers": {"Authorization": "Bearer ..."}},   # optional
     "allowed_tools": ["book_appointment"], "timeout_seconds": 10}           # optional
    {"template_id": "..."}          # a tool template of the organization (POST /tool-templates)

A ``webhook`` tool is answered by the organization's server (the ``tool-calls`` webhook); the
other types are built in, with a name, description and parameters of their own (a name or
description given replaces them). ``transfer_call`` offers the model only ``destinations``,
which the transfer policy still checks when the call is transferred.
An ``mcp`` tool is an MCP server's tools (``calls/tools/mcp.py``): listed when a call starts,
each offered under its own name (``allowed_tools``: only those), called on the server; its
``headers`` are secrets (``domain/secret_fields.py``: masked on read, never logged).
``collect_secure_digits`` collects keypad digits the model never sees and sends them to the
organization's server as a ``tool-calls`` request (``calls/tools/executor.py``); the model may
ask for a ``length``, another ``terminator``, ``digit_timeout_seconds`` or ``prompt``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from voicedock.calls import json_readers
from voicedock.calls.control import TRANSFER_MODES
from voicedock.domain.assistant_config import AssistantConfig
from voicedock.domain.json import JsonObject, JsonValue, json_object
from voicedock.domain.tenant_schemas import check_tenant_schema
from voicedock.domain.webhooks import redact
from voicedock.errors import BadRequest
from voicedock.pbx.base import DTMF_PATTERN
from voicedock.pipeline.hearing.secure_digits import (
    DEFAULT_MAX_DIGITS,
    DEFAULT_MIN_DIGITS,
    DEFAULT_TERMINATOR,
    DEFAULT_TIMEOUT_S,
    TERMINATORS,
    SecureDigitsPlan,
)
from voicedock.pipeline.hearing.secure_digits import (
    MAX_SECURE_DIGITS as MAX_SECURE_DIGITS,
)
from voicedock.pipeline.tools import COLLECT_SECURE_DIGITS as COLLECT_SECURE_DIGITS
from voicedock.pipeline.tools import END_CALL as END_CALL  # the built-in tools: the API names them
from voicedock.pipeline.tools import SEND_DTMF as SEND_DTMF
from voicedock.pipeline.tools import TRANSFER_CALL as TRANSFER_CALL
from voicedock.pipeline.tools import ToolSpec

WEBHOOK = "webhook"
MCP = "mcp"  # an MCP server's tools
# The types a tool template may have: an mcp tool's headers are secrets, kept by the assistant.
TEMPLATE_TOOL_TYPES = (WEBHOOK, END_CALL, TRANSFER_CALL, SEND_DTMF, COLLECT_SECURE_DIGITS)
TOOL_TYPES = (*TEMPLATE_TOOL_TYPES, MCP)
MAX_MCP_HEADERS = 16
MAX_HEADER_VALUE_CHARS = 4_096
MAX_ALLOWED_TOOLS = 64
# Headers voicedock sets itself on an MCP request (or the HTTP client does).
RESERVED_HEADERS = frozenset(
    {
        "accept",
        "connection",
        "content-length",
        "content-type",
        "host",
        "mcp-protocol-version",
        "mcp-session-id",
        "transfer-encoding",
        "user-agent",
    }
)
HEADER_NAME_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$"  # an RFC 9110 token
HEADER_VALUE_PATTERN = r"^[\x20-\x7e\t]*$"  # visible ASCII, spaces and tabs: no line breaks
INVALID_HEADER = "Invalid header"
_HEADER_NAME = re.compile(HEADER_NAME_PATTERN)
_HEADER_VALUE = re.compile(HEADER_VALUE_PATTERN)
MAX_TOOLS = 32
TEMPLATE_ID = "template_id"
DEFAULT_TIMEOUT_SECONDS = 20
SECURE_DIGITS_FIELDS = (  # what a collect_secure_digits tool may set, besides its type
    "name",
    "description",
    "prompt",
    "min_digits",
    "max_digits",
    "terminator",
    "digit_timeout_seconds",
    "server",
    "timeout_seconds",
)
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what OpenAI-compatible APIs accept
_FIELDS = {
    WEBHOOK: ("type", "name", "description", "parameters", "server", "timeout_seconds"),
    END_CALL: ("type", "name", "description"),
    TRANSFER_CALL: ("type", "name", "description", "destinations", "mode", "message"),
    SEND_DTMF: ("type", "name", "description"),
    COLLECT_SECURE_DIGITS: ("type", *SECURE_DIGITS_FIELDS),
    MCP: ("type", "server", "allowed_tools", "timeout_seconds"),
}
NO_TERMINATOR = ""  # a secure entry's ``terminator``: none (it ends by its length or timeout)
SECURE_TERMINATORS = (*TERMINATORS, NO_TERMINATOR)
MAX_DIGIT_TIMEOUT_SECONDS = 60
DEFAULT_SECURE_PROMPT = "Please enter the digits on your keypad now."
_BUILT_IN_DESCRIPTIONS = {
    END_CALL: "End the call once the conversation is over (say goodbye first).",
    TRANSFER_CALL: "Transfer the caller to one of the allowed destinations.",
    SEND_DTMF: (
        "Press keys (DTMF digits 0-9, *, #) on the line, e.g. to navigate a phone menu; "
        "w between keys waits half a second, W a second (1w2W#)."
    ),
    COLLECT_SECURE_DIGITS: (
        "Ask the caller to key in sensitive digits (a card number, a PIN) on their keypad. "
        "You never see the digits: they go to the business's server, and you receive its answer."
    ),
}


@dataclass(frozen=True, slots=True)
class AssistantTool:
    """One checked tool of an assistant: what the model sees, and how it is carried out."""

    type: str
    spec: ToolSpec
    url: str | None = None  # a webhook tool's own server
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS
    destinations: tuple[str, ...] = ()
    mode: str = "blind"
    message: str | None = None
    secure_digits: SecureDigitsPlan | None = None  # collect_secure_digits: its entry
    prompt: str | None = None  # collect_secure_digits: what the caller is asked
    mcp: McpServer | None = None  # an MCP server's tool: its server


@dataclass(frozen=True, slots=True)
class McpServer:
    """An ``mcp`` tool's server: where its tools are listed and called. ``headers`` are
    secrets (never logged); ``allowed_tools``: the only tools offered (None: all)."""

    url: str
    headers: tuple[tuple[str, str], ...] = ()
    allowed_tools: frozenset[str] | None = None
    timeout_s: float = DEFAULT_TIMEOUT_SECONDS

    def __repr__(self) -> str:  # never the headers' values
        return f"McpServer({redact(self.url)!r}, {len(self.headers)} headers)"


def tool_name_ok(name: str) -> bool:
    """Whether ``name`` is one OpenAI-compatible APIs accept for a tool."""
    return _NAME.fullmatch(name) is not None


def check_tools(value: object) -> list[JsonObject]:
    """The ``tools`` list of a configuration, checked (400 naming the bad field)."""
    if not isinstance(value, list):
        raise BadRequest("tools must be a list")
    if len(value) > MAX_TOOLS:
        raise BadRequest(f"tools: at most {MAX_TOOLS}")
    checked = [_check_item(item, f"tools[{i}]") for i, item in enumerate(value)]
    check_unique_names([t for t in checked if TEMPLATE_ID not in t])
    return checked


def check_unique_names(tools: Sequence[Mapping[str, JsonValue]]) -> None:
    """400 ``Duplicate tool name`` when two tools (a built-in one by its type) share a name:
    each may be valid, the list as a whole is not (what the model would be offered)."""
    # An mcp tool is a server: its tools are named when a call starts (calls/tools/mcp.py).
    names = [str(t.get("name") or t.get("type")) for t in tools if t.get("type") != MCP]
    if len(set(names)) != len(names):
        raise BadRequest("tools: two tools have the same name", error="Duplicate tool name")


def _check_item(item: object, where: str) -> JsonObject:
    """A tool, or a reference to a tool template (expanded when a call is placed)."""
    obj = json_readers.require_object(item, where)
    if TEMPLATE_ID not in obj:
        return check_tool(obj, where)
    json_readers.reject_unknown(obj, (TEMPLATE_ID,), where)
    template_id = obj[TEMPLATE_ID]
    if not isinstance(template_id, str) or not template_id or len(template_id) > 100:
        raise BadRequest(f"{where}.{TEMPLATE_ID} must be a tool template id")
    return {TEMPLATE_ID: template_id}


def check_tool(item: object, where: str, types: Sequence[str] = TOOL_TYPES) -> JsonObject:
    """One tool (an assistant's, or a template's: ``TEMPLATE_TOOL_TYPES``), checked; a copy."""
    obj = dict(json_readers.require_object(item, where))
    kind = obj.setdefault("type", WEBHOOK)
    if not isinstance(kind, str) or kind not in types:
        raise BadRequest(f"{where}.type must be one of {', '.join(types)}")
    json_readers.reject_unknown(obj, _FIELDS[kind], where)
    name = obj.get("name")
    if kind == WEBHOOK and name is None:
        raise BadRequest(f"{where}.name is required")
    if name is not None and not (isinstance(name, str) and _NAME.fullmatch(name)):
        raise BadRequest(f"{where}.name must be 1-64 of A-Z, a-z, 0-9, _ and -")
    json_readers.text(obj, "description", max_len=2_000)
    parameters = obj.get("parameters")
    if parameters is not None and (
        not isinstance(parameters, dict) or parameters.get("type", "object") != "object"
    ):
        raise BadRequest(f"{where}.parameters must be a JSON Schema of type object")
    if parameters is not None:  # only offered to the model, never applied here; still bounded
        check_tenant_schema(parameters, f"{where}.parameters", applied=False)
    server = obj.get("server")
    if kind == MCP and server is None:
        raise BadRequest(f"{where}.server is required")
    if server is not None:
        server = json_readers.require_object(server, f"{where}.server")
        known = ("url", "headers") if kind == MCP else ("url",)
        json_readers.reject_unknown(server, known, f"{where}.server")
        url = server.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise BadRequest(f"{where}.server.url must be an http(s) URL")
        if server.get("headers") is not None:
            _check_headers(server["headers"], f"{where}.server.headers")
    if kind == MCP and obj.get("allowed_tools") is not None:
        _check_allowed_tools(obj["allowed_tools"], f"{where}.allowed_tools")
    if obj.get("timeout_seconds") is not None:
        json_readers.integer(obj, "timeout_seconds", DEFAULT_TIMEOUT_SECONDS, 1, 120)
    if kind == TRANSFER_CALL:
        destinations = obj.get("destinations")
        if (
            not isinstance(destinations, list)
            or not destinations
            or not all(isinstance(d, str) and 0 < len(d) <= 80 for d in destinations)
        ):
            raise BadRequest(f"{where}.destinations must be a non-empty list of destinations")
        json_readers.choice(obj, "mode", TRANSFER_MODES, "blind")
        json_readers.text(obj, "message", max_len=2_000)
    if kind == COLLECT_SECURE_DIGITS:
        _check_secure_digits(obj, where)
    return obj


def _check_headers(value: object, where: str) -> None:
    """An mcp server's headers: at most ``MAX_MCP_HEADERS``, named by tokens voicedock does
    not set itself, each a one-line value (its text never in the message: it is a secret)."""
    headers = json_readers.require_object(value, where)
    if len(headers) > MAX_MCP_HEADERS:
        raise BadRequest(f"{where}: at most {MAX_MCP_HEADERS} headers")
    for name, header in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise BadRequest(
                f"{where}: a header name must be a token of 1-64 characters", error=INVALID_HEADER
            )
        if name.lower() in RESERVED_HEADERS:
            raise BadRequest(f"{where}.{name} is set by voicedock", error=INVALID_HEADER)
        if (
            not isinstance(header, str)
            or not 0 < len(header) <= MAX_HEADER_VALUE_CHARS
            or not _HEADER_VALUE.fullmatch(header)
        ):
            raise BadRequest(
                f"{where}.{name} must be a string of 1-{MAX_HEADER_VALUE_CHARS} visible ASCII "
                "characters, spaces and tabs",
                error=INVALID_HEADER,
            )


def _check_allowed_tools(value: object, where: str) -> None:
    if (
        not isinstance(value, list)
        or len(value) > MAX_ALLOWED_TOOLS
        or not all(isinstance(n, str) and _NAME.fullmatch(n) for n in value)
    ):
        raise BadRequest(
            f"{where} must be a list of at most {MAX_ALLOWED_TOOLS} tool names "
            "(1-64 of A-Z, a-z, 0-9, _ and -)"
        )


def check_template_tool(item: object, where: str) -> JsonObject:
    """A tool template's tool: any type but ``mcp`` (its headers are an assistant's secrets)."""
    return check_tool(item, where, TEMPLATE_TOOL_TYPES)


def _check_secure_digits(obj: Mapping[str, object], where: str) -> None:
    json_readers.text(obj, "prompt", max_len=2_000)
    low = json_readers.integer(obj, "min_digits", DEFAULT_MIN_DIGITS, 1, MAX_SECURE_DIGITS)
    high = json_readers.integer(obj, "max_digits", DEFAULT_MAX_DIGITS, 1, MAX_SECURE_DIGITS)
    if low > high:
        raise BadRequest(
            f"{where}.min_digits must not exceed max_digits", error="Invalid digit range"
        )
    json_readers.choice(obj, "terminator", SECURE_TERMINATORS, DEFAULT_TERMINATOR)
    json_readers.integer(
        obj, "digit_timeout_seconds", int(DEFAULT_TIMEOUT_S), 1, MAX_DIGIT_TIMEOUT_SECONDS
    )


def assistant_tools(config: AssistantConfig) -> list[AssistantTool]:
    """The tools of a (checked) resolved configuration, ready for a call."""
    tools = config.tools if isinstance(config.tools, list) else []
    items = [item for item in map(json_object, tools) if item is not None]
    return [_tool(item) for item in items if TEMPLATE_ID not in item and item.get("type") != MCP]


def mcp_servers(config: AssistantConfig) -> list[McpServer]:
    """The MCP servers of a (checked) resolved configuration's ``mcp`` tools: their tools are
    listed when a call starts (``calls/tools/mcp.py``)."""
    tools = config.tools if isinstance(config.tools, list) else []
    items = [item for item in map(json_object, tools) if item is not None]
    return [_mcp_server(item) for item in items if item.get("type") == MCP]


def _mcp_server(item: Mapping[str, JsonValue]) -> McpServer:
    server = json_object(item.get("server")) or {}
    headers = json_object(server.get("headers")) or {}
    allowed = item.get("allowed_tools")
    timeout = item.get("timeout_seconds")
    return McpServer(
        url=str(server.get("url", "")),
        headers=tuple((name, str(value)) for name, value in headers.items()),
        allowed_tools=frozenset(map(str, allowed)) if isinstance(allowed, list) else None,
        timeout_s=float(timeout)
        if isinstance(timeout, int) and timeout
        else DEFAULT_TIMEOUT_SECONDS,
    )


def tool_specs(tools: Sequence[AssistantTool]) -> tuple[ToolSpec, ...]:
    return tuple(tool.spec for tool in tools)


def _tool(item: Mapping[str, JsonValue]) -> AssistantTool:
    kind = str(item.get("type", WEBHOOK))
    name = str(item.get("name") or kind)
    description = str(item.get("description") or _BUILT_IN_DESCRIPTIONS.get(kind, ""))
    listed = item.get("destinations")
    destinations = tuple(str(d) for d in listed) if isinstance(listed, list) else ()
    parameters = json_object(item.get("parameters")) or _built_in_parameters(kind, destinations)
    server = json_object(item.get("server"))
    timeout = item.get("timeout_seconds")
    timeout_s = float(timeout) if isinstance(timeout, int | float) and timeout else None
    message = item.get("message")
    prompt = item.get("prompt")
    return AssistantTool(
        type=kind,
        spec=ToolSpec(name, description, parameters),
        url=str(server["url"]) if server is not None else None,
        timeout_s=timeout_s or DEFAULT_TIMEOUT_SECONDS,
        destinations=destinations,
        mode=str(item.get("mode") or "blind"),
        message=message if isinstance(message, str) else None,
        secure_digits=_secure_digits_plan(item) if kind == COLLECT_SECURE_DIGITS else None,
        prompt=prompt if isinstance(prompt, str) and prompt else None,
    )


def _secure_digits_plan(item: Mapping[str, JsonValue]) -> SecureDigitsPlan:
    """A (checked) ``collect_secure_digits`` tool's entry, its defaults filled in."""

    def number(key: str, default: int) -> int:
        value = item.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    terminator = item.get("terminator")
    if terminator is None:
        terminator = DEFAULT_TERMINATOR
    return SecureDigitsPlan(
        min_digits=number("min_digits", DEFAULT_MIN_DIGITS),
        max_digits=number("max_digits", DEFAULT_MAX_DIGITS),
        terminator=terminator if isinstance(terminator, str) and terminator else None,
        timeout_s=float(number("digit_timeout_seconds", int(DEFAULT_TIMEOUT_S))),
    )


def _built_in_parameters(kind: str, destinations: Sequence[str]) -> JsonObject:
    properties: JsonObject = {}
    required: list[JsonValue] = []
    if kind == TRANSFER_CALL:
        properties["destination"] = {"type": "string", "enum": list(destinations)}
        required.append("destination")
    elif kind == SEND_DTMF:
        properties["digits"] = {"type": "string", "pattern": DTMF_PATTERN}
        required.append("digits")
    elif kind == COLLECT_SECURE_DIGITS:
        properties["prompt"] = {"type": "string", "description": "What the caller is asked."}
        properties["length"] = {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_SECURE_DIGITS,
            "description": "How many digits are expected, when that is known.",
        }
        properties["terminator"] = {"type": "string", "enum": list(SECURE_TERMINATORS)}
        properties["digit_timeout_seconds"] = {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_DIGIT_TIMEOUT_SECONDS,
        }
    schema: JsonObject = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema
