"""The tools ``voicedock mcp`` offers, and the REST call each makes on the node's API.

    list_assistants   GET /assistants             the organization's assistants (id, name)
    place_call        POST /calls/outbound        a call with a saved assistant (override and
                                                  metadata as the API takes them)
    get_call          GET /calls/{id}             status, end reason, times, summary, analysis
                                                  and the transcript (who said what)
    list_calls        GET /calls?limit=N          the latest calls, newest first
    control_call      POST /calls/{id}/control    say, inject-context, end-call, transfer

Each tool's arguments are read by its type (the input schema the client is given is made from
it): a call or assistant id and a destination are checked here before they reach a URL; what
the API checks (the override, the metadata, what may be said) it refuses with its own words,
which become the tool's error. A tool's text is the API's answer as JSON, trimmed to what a
model reads.
"""

from __future__ import annotations

import json
from typing import Annotated, Final, Literal

import aiohttp
import msgspec
from msgspec import Meta

from voicedock.api.models.field_types import E164_PATTERN, ID_PATTERN
from voicedock.domain.json import JsonObject, JsonValue, json_object

CallId = Annotated[str, Meta(pattern=ID_PATTERN, description="The call's id (call_id).")]
SAID_MAX = 4_000  # characters of what control_call may say or inject
KEPT_CALL_FIELDS: Final = (
    "id",
    "status",
    "direction",
    "destination",
    "end_reason",
    "created_at",
    "started_at",
    "ended_at",
    "duration_seconds",
    "summary",
    "analysis_result",
)


class ListAssistants(msgspec.Struct, forbid_unknown_fields=True):
    """The organization's assistants: their ids, to place a call with one."""


class PlaceCall(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Place an outbound phone call with one of the organization's assistants; the call's id
    comes back at once, get_call follows it."""

    destination: Annotated[
        str, Meta(pattern=E164_PATTERN, description="The number to call, E.164: +31612345678.")
    ]
    assistant_id: Annotated[
        str, Meta(pattern=ID_PATTERN, description="The assistant that talks (list_assistants).")
    ]
    assistant_override: (
        Annotated[
            dict[str, object],
            Meta(
                description="Settings of the assistant changed for this call only "
                "(first_message, system_prompt, ...)."
            ),
        ]
        | None
    ) = None
    metadata: (
        Annotated[dict[str, object], Meta(description="Your own JSON, stored with the call.")]
        | None
    ) = None


class GetCall(msgspec.Struct, forbid_unknown_fields=True):
    """A call: its status, why it ended, its summary and analysis, and its transcript."""

    call_id: CallId


class ListCalls(msgspec.Struct, forbid_unknown_fields=True):
    """The organization's latest calls, newest first."""

    limit: Annotated[int, Meta(ge=1, le=50, description="How many (1-50).")] = 10


class ControlCall(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Act on a live call: say something, give the assistant context, transfer it, end it."""

    call_id: CallId
    type: Annotated[
        Literal["say", "inject-context", "end-call", "transfer"],
        Meta(
            description="say: content is spoken; inject-context: content is given to the "
            "assistant; end-call: content (optional) is said last; transfer: to destination."
        ),
    ]
    content: Annotated[str, Meta(min_length=1, max_length=SAID_MAX)] | None = None
    destination: (
        Annotated[str, Meta(description="transfer: an E.164 number or a destination id.")] | None
    ) = None


TOOLS: Final[dict[str, type[msgspec.Struct]]] = {
    "list_assistants": ListAssistants,
    "place_call": PlaceCall,
    "get_call": GetCall,
    "list_calls": ListCalls,
    "control_call": ControlCall,
}


def tool_list() -> list[JsonObject]:
    """``tools/list``'s tools: each one's name, description and input schema (its type's)."""
    _, components = msgspec.json.schema_components(TOOLS.values(), schema_hook=_any_json)
    listed: list[JsonObject] = []
    for name, kind in TOOLS.items():
        schema = dict(components[kind.__name__])
        description = " ".join(str(schema.pop("description", "")).split())
        schema.pop("title", None)
        schema.setdefault("properties", {})
        listed.append({"name": name, "description": description, "inputSchema": schema})
    return listed


def _any_json(kind: type) -> dict[str, object]:
    """The schema of a JSON object's values (``dict[str, object]``): any JSON."""
    if kind is object:
        return {"description": "any JSON value"}
    raise NotImplementedError(kind)


class NodeApi:
    """The node's REST API, as one key's holder calls it."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session, self._url = session, url.rstrip("/")

    async def run(self, key: str, name: str, arguments: JsonObject) -> tuple[str, bool]:
        """The tool ``name`` carried out with ``arguments``: its text, and whether it failed."""
        kind = TOOLS.get(name)
        if kind is None:
            return f"There is no tool named {name[:64]}.", True
        try:
            args = msgspec.convert(arguments, kind)
        except msgspec.ValidationError as exc:
            return f"Invalid arguments: {exc}", True
        try:
            return _text(await self._call(key, args)), False
        except _ApiRefused as exc:
            return str(exc), True

    async def _call(self, key: str, args: msgspec.Struct) -> JsonValue:
        match args:
            case ListAssistants():
                answer = json_object(await self._request(key, "GET", "/assistants")) or {}
                found = answer.get("assistants")
                return [
                    {"id": a.get("id"), "name": a.get("name")}
                    for a in (found if isinstance(found, list) else [])
                    if isinstance(a, dict)
                ]
            case PlaceCall():
                body: JsonObject = {
                    k: v for k, v in msgspec.to_builtins(args).items() if v is not None
                }
                return await self._request(key, "POST", "/calls/outbound", body)
            case GetCall(call_id):
                return _call_read(await self._request(key, "GET", f"/calls/{call_id}"))
            case ListCalls(limit):
                return await self._request(key, "GET", f"/calls?limit={limit}")
            case ControlCall():
                command = msgspec.to_builtins(args)
                call_id = command.pop("call_id")
                command = {k: v for k, v in command.items() if v is not None}
                return await self._request(key, "POST", f"/calls/{call_id}/control", command)
        raise _ApiRefused("unknown tool")

    async def _request(
        self, key: str, method: str, path: str, body: JsonObject | None = None
    ) -> JsonValue:
        headers = {"Authorization": f"Bearer {key}"}
        try:
            async with self._session.request(
                method, self._url + path, json=body, headers=headers
            ) as resp:
                text = await resp.text()
        except aiohttp.ClientError as exc:
            raise _ApiRefused(f"The voicedock API could not be reached: {exc}") from None
        try:
            answer: JsonValue = json.loads(text) if text else None
        except json.JSONDecodeError:
            answer = None
        if resp.status >= 400:
            said = json_object(answer) or {}
            raise _ApiRefused(f"{resp.status} {said.get('message') or text[:300]}")
        return answer


class _ApiRefused(Exception):
    """What the API answered instead (its status and message), or why it was not reached."""


def _call_read(answer: JsonValue) -> JsonObject:
    """A call as a model reads it: its state and who said what (tool calls left out)."""
    call = json_object(answer) or {}
    read: JsonObject = {key: call[key] for key in KEPT_CALL_FIELDS if key in call}
    messages = call.get("messages")
    read["transcript"] = [
        {"role": m.get("role"), "content": m.get("content")}
        for m in (messages if isinstance(messages, list) else [])
        if isinstance(m, dict) and m.get("role") in ("user", "assistant")
    ]
    return read


def _text(value: JsonValue) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
