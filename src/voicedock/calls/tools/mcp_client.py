"""``McpSession``: one session with an organization's MCP server, over streamable HTTP.

    session = McpSession(http, egress, server)     # http: a session from egress.session()
    await session.open()                           # initialize, notifications/initialized
    listed = await session.list_tools()            # tools/list, its pages followed (bounded)
    answer = await session.call_tool("book", {"day": "Monday"})   # tools/call

Each request is a JSON-RPC POST of its own (``Accept: application/json, text/event-stream``);
the answer is a JSON object, or a stream of server-sent events read until the response with
the request's id. The server's ``Mcp-Session-Id`` and the negotiated protocol version go with
every later request. The URL is a tenant's: checked by the egress guard before each request
(and at connect time by the session's resolver), redirects not followed, each answer read to
at most ``ResponseCaps.server_answer_bytes``. The caller bounds the time (``asyncio.timeout``).
Every failure is a ``ServerRequestFailed`` whose reason names neither the URL's secrets nor a
header's value.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NoReturn

import aiohttp

from voicedock import __version__
from voicedock.calls.tools.config import McpServer
from voicedock.domain.json import JsonObject, JsonValue, json_object
from voicedock.domain.mcp import MCP_VERSIONS
from voicedock.domain.webhooks import redact
from voicedock.egress import Egress
from voicedock.egress.caps import read_at_most
from voicedock.errors import ServerRequestFailed, UnsafeUrl

log = logging.getLogger("voicedock.calls")

PROTOCOL_VERSION = "2025-06-18"  # the version asked for in initialize
MAX_PAGES = 8  # tools/list pages followed
MAX_LISTED = 256  # tools read of one server's listing
MAX_REASON_CHARS = 200  # of a server's JSON-RPC error message, in a reason
SESSION_HEADER = "Mcp-Session-Id"
VERSION_HEADER = "MCP-Protocol-Version"


@dataclass(frozen=True, slots=True)
class ListedTool:
    """A tool as the server lists it (checked and bounded by ``calls/tools/mcp.py``)."""

    name: str
    description: str
    input_schema: JsonValue


@dataclass(frozen=True, slots=True)
class CallAnswer:
    """A ``tools/call`` result: its text blocks joined, and whether it is an error."""

    text: str
    is_error: bool


class McpSession:
    def __init__(self, http: aiohttp.ClientSession, egress: Egress, server: McpServer) -> None:
        self._http = http
        self._egress = egress
        self._server = server
        self._session_id: str | None = None
        self._version: str | None = None
        self._next_id = 0

    async def open(self) -> None:
        """The initialize handshake; ``ServerRequestFailed`` when the server refuses it."""
        result = await self._request(
            "initialize",
            {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "voicedock", "version": __version__},
            },
        )
        version = result.get("protocolVersion")
        if version not in MCP_VERSIONS:  # the server answers one this client speaks
            raise ServerRequestFailed("the MCP server speaks another protocol version")
        self._version = str(version)
        await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"}, None)

    async def list_tools(self) -> list[ListedTool]:
        """The server's tools (at most ``MAX_LISTED``, over at most ``MAX_PAGES`` pages)."""
        listed: list[ListedTool] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params: JsonObject = {} if cursor is None else {"cursor": cursor}
            result = await self._request("tools/list", params)
            tools = result.get("tools")
            for item in tools if isinstance(tools, list) else []:
                tool = _listed(item)
                if tool is not None and len(listed) < MAX_LISTED:
                    listed.append(tool)
            following = result.get("nextCursor")
            if not isinstance(following, str) or not following or len(listed) >= MAX_LISTED:
                break
            cursor = following
        return listed

    async def call_tool(self, name: str, arguments: JsonObject) -> CallAnswer:
        result = await self._request("tools/call", {"name": name, "arguments": arguments})
        blocks = result.get("content")
        texts = [
            str(block["text"])
            for block in (blocks if isinstance(blocks, list) else [])
            if isinstance(block, dict) and block.get("type") == "text" and "text" in block
        ]
        text = "\n".join(texts)
        if not texts and result.get("structuredContent") is not None:
            text = json.dumps(result["structuredContent"], separators=(",", ":"))
        return CallAnswer(text, result.get("isError") is True)

    async def _request(self, method: str, params: JsonObject) -> JsonObject:
        self._next_id += 1
        request_id = self._next_id
        message: JsonObject = {"jsonrpc": "2.0", "id": request_id, "method": method}
        message["params"] = params
        answer = await self._post(message, request_id)
        assert answer is not None  # a request is answered (else _post raised)
        error = json_object(answer.get("error"))
        if error is not None:
            said = str(error.get("message", ""))[:MAX_REASON_CHARS]
            raise ServerRequestFailed(f"the MCP server refused {method}: {said}")
        result = json_object(answer.get("result"))
        if result is None:
            raise ServerRequestFailed(f"the MCP server's answer to {method} has no result")
        return result

    def _headers(self) -> dict[str, str]:
        headers = dict(self._server.headers)  # secrets: never logged
        headers["Accept"] = "application/json, text/event-stream"
        headers["Content-Type"] = "application/json"
        if self._session_id is not None:
            headers[SESSION_HEADER] = self._session_id
        if self._version is not None:
            headers[VERSION_HEADER] = self._version
        return headers

    async def _post(self, message: JsonObject, request_id: int | None) -> JsonObject | None:
        """POST one message; the response with ``request_id`` (None: a notification, whose
        answer is only its status)."""
        url = self._server.url
        try:
            await self._egress.check(url)
            async with self._http.post(
                url,
                data=json.dumps(message).encode(),
                headers=self._headers(),
                allow_redirects=False,
            ) as response:
                if not 200 <= response.status < 300:
                    raise ServerRequestFailed(f"the MCP server answered HTTP {response.status}")
                if self._session_id is None and SESSION_HEADER in response.headers:
                    self._session_id = response.headers[SESSION_HEADER][:256]
                if request_id is None:
                    return None
                return await self._answer(response, request_id)
        except UnsafeUrl as exc:  # checked now, or by the guarded resolver at connect time
            raise ServerRequestFailed(f"MCP server URL refused: {exc.reason}") from None
        except (aiohttp.ClientError, OSError) as exc:
            log.info("MCP server %s: %s", redact(url), type(exc).__name__)
            raise ServerRequestFailed("the MCP server could not be reached") from None

    async def _answer(self, response: aiohttp.ClientResponse, request_id: int) -> JsonObject:
        """The response to ``request_id``: a JSON body, or the event of a stream that holds
        it (read until then, at most the cap in all)."""
        cap = self._egress.caps.server_answer_bytes
        kind = response.content_type
        if kind == "application/json":
            raw = await _read_at_most(response, cap)
            return _response(_decoded(raw), request_id) or _no_response()
        if kind != "text/event-stream":
            raise ServerRequestFailed("the MCP server's answer is not JSON")
        stream = _Events()
        read = 0
        async for chunk in response.content.iter_any():
            read += len(chunk)
            if read > cap:
                raise ServerRequestFailed("the MCP server's answer is too large")
            for data in stream.feed(chunk):
                found = _response(_decoded(data), request_id)
                if found is not None:
                    return found
        return _no_response()


async def _read_at_most(response: aiohttp.ClientResponse, cap: int) -> bytes:
    raw = await read_at_most(response.content, cap)
    if len(raw) > cap:
        raise ServerRequestFailed("the MCP server's answer is too large")
    return raw


def _no_response() -> NoReturn:
    raise ServerRequestFailed("the MCP server sent no response")


def _decoded(raw: bytes) -> JsonValue:
    try:
        value: JsonValue = json.loads(raw)
    except (ValueError, RecursionError):
        raise ServerRequestFailed("the MCP server's answer is not JSON") from None
    return value


def _response(value: JsonValue, request_id: int) -> JsonObject | None:
    """The JSON-RPC response to ``request_id`` among what was decoded (a batch too)."""
    for item in value if isinstance(value, list) else [value]:
        message = json_object(item)
        if message is not None and message.get("id") == request_id and "method" not in message:
            return message
    return None


class _Events:
    """Server-sent events as they arrive: the data of each complete ``message`` event."""

    def __init__(self) -> None:
        self._pending = b""
        self._data: list[bytes] = []
        self._event = b"message"

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        self._pending += chunk
        while True:
            end = self._pending.find(b"\n")
            if end < 0:
                return
            line, self._pending = self._pending[:end].rstrip(b"\r"), self._pending[end + 1 :]
            if not line:  # an event ends
                data, event = b"\n".join(self._data), self._event
                self._data, self._event = [], b"message"
                if data and event == b"message":
                    yield data
                continue
            field, _, text = line.partition(b":")
            text = text[1:] if text.startswith(b" ") else text
            if field == b"data":
                self._data.append(text)
            elif field == b"event":
                self._event = text


def _listed(item: object) -> ListedTool | None:
    tool = json_object(item)
    if tool is None or not isinstance(tool.get("name"), str):
        return None
    description = tool.get("description")
    return ListedTool(
        name=str(tool["name"]),
        description=description if isinstance(description, str) else "",
        input_schema=tool.get("inputSchema"),
    )
