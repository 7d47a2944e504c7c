"""JSON-RPC 2.0 as MCP speaks it, and the server's answers: ``MCPServer.handle`` takes one
message (its JSON bytes) and returns the answer's bytes, or None for a notification.

The handshake era of the protocol (``initialize``, then requests): a client's version is
answered with itself when it is one of ``MCP_VERSIONS`` (``domain/mcp.py``), else with the
newest of them (the client then decides). ``server/discover`` (the stateless revision's
probe) is an unknown method, so a client falls back to the handshake. Errors are JSON-RPC's:
-32700 a body that is not JSON, -32600 a message that is not a request, -32601 an unknown
method, -32602 bad params; a tool that fails is a result with ``isError`` (its text says
why), as the protocol wants it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

import msgspec

from voicedock.domain.json import JsonObject, JsonValue, json_object
from voicedock.domain.mcp import MCP_VERSIONS

log = logging.getLogger("voicedock.mcp")

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
INSTRUCTIONS: Final = (
    "voicedock places phone calls with AI voice assistants through the organization's own "
    "phone system. List the assistants, place a call with one of them, then read the call "
    "(status, transcript, summary) until it ended; a live call can be told what to say, "
    "given context, transferred or ended."
)


class Request(msgspec.Struct, forbid_unknown_fields=False):
    """A JSON-RPC message as the server reads it: a request has an ``id``."""

    jsonrpc: str
    method: str
    id: int | str | msgspec.UnsetType | None = msgspec.UNSET
    params: dict[str, object] | None = None


class ToolCallParams(msgspec.Struct, forbid_unknown_fields=False):
    name: str
    arguments: dict[str, object] | None = None


# A tool's outcome: its text, and whether it failed.
ToolRun = Callable[[str, JsonObject], Awaitable[tuple[str, bool]]]


class MCPServer:
    def __init__(self, tools: list[JsonObject], run: ToolRun, version: str) -> None:
        """``tools``: what ``tools/list`` answers; ``run(name, arguments)`` carries one out."""
        self._tools, self._run, self._version = tools, run, version

    async def handle(self, body: bytes) -> bytes | None:
        """One message in; its answer (None: a notification, or a client's response)."""
        try:
            raw = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return _error(None, PARSE_ERROR, "Parse error")
        raw_object = json_object(raw)
        if raw_object is None or "method" not in raw_object:
            if raw_object is not None and ("result" in raw_object or "error" in raw_object):
                return None  # a client's answer to a request this server never makes
            return _error(None, INVALID_REQUEST, "Invalid Request")
        try:
            request = msgspec.convert(raw_object, Request)
        except msgspec.ValidationError:
            return _error(raw_object.get("id"), INVALID_REQUEST, "Invalid Request")
        if isinstance(request.id, msgspec.UnsetType):
            return None  # notifications/initialized, cancellations: nothing to answer
        try:
            result = await self._answer(request.method, json_object(request.params) or {})
        except _Refused as exc:
            return _error(request.id, exc.code, str(exc))
        return msgspec.json.encode({"jsonrpc": "2.0", "id": request.id, "result": result})

    async def _answer(self, method: str, params: JsonObject) -> JsonObject:
        if method == "initialize":
            asked = params.get("protocolVersion")
            return {
                "protocolVersion": asked if asked in MCP_VERSIONS else MCP_VERSIONS[-1],
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "voicedock", "version": self._version},
                "instructions": INSTRUCTIONS,
            }
        if method == "ping":
            return {}
        if method == "tools/list":
            tools: list[JsonValue] = list(self._tools)
            return {"tools": tools}
        if method == "tools/call":
            try:
                call = msgspec.convert(params, ToolCallParams)
            except msgspec.ValidationError as exc:
                raise _Refused(INVALID_PARAMS, f"Invalid params: {exc}") from None
            text, failed = await self._run(call.name, json_object(call.arguments) or {})
            return {"content": [{"type": "text", "text": text}], "isError": failed}
        raise _Refused(METHOD_NOT_FOUND, f"Method not found: {method[:64]}")


class _Refused(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _error(request_id: object, code: int, message: str) -> bytes:
    answer_id = request_id if isinstance(request_id, int | str) else None
    error = {"code": code, "message": message}
    return msgspec.json.encode({"jsonrpc": "2.0", "id": answer_id, "error": error})
