"""``voicedock mcp`` driven by the official MCP SDK's client, as an AI assistant's host drives
it: over stdio (the host starts ``voicedock mcp`` with the organization's key in its
environment) and over streamable HTTP (each client sends its own key). The node's API is the
real app with a fake PBX: a call placed through the server is originated, read back and ended;
an organization's key reaches only its own calls; bad arguments are the tool's error, never a
request. The protocol's own answers (versions, errors) are checked on the wire."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx2
import pytest
from aiohttp.test_utils import TestServer
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from api.conftest import Api
from fakes.world import DESTINATION, SUPPORT_ID
from voicedock.mcp_server.protocol import MCPServer
from voicedock.mcp_server.tools import NodeApi, tool_list
from voicedock.mcp_server.transports import http_app

pytestmark = pytest.mark.unit

TOOLS = ["list_assistants", "place_call", "get_call", "list_calls", "control_call"]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """One store: the server is a client of the REST API, which the API's own tests run on
    both (each test here starts a server process)."""
    return f"sqlite:///{tmp_path / 'mcp.db'}"


def stdio(api: Api, key: str) -> Client:
    url = str(api.client.make_url("/"))
    command = [sys.executable, "-m", "voicedock.cli", "mcp", "--url", url]
    parameters = StdioServerParameters(
        command=command[0], args=command[1:], env={"VOICEDOCK_API_KEY": key}
    )
    return Client(parameters, mode="legacy")


def text(result: Any) -> Any:
    (block,) = result.content
    return json.loads(block.text) if not result.is_error else block.text


async def test_over_stdio_a_call_is_placed_read_and_ended(api: Api) -> None:
    async with stdio(api, api.acme_key) as client:
        listed = await client.list_tools()
        assert [tool.name for tool in listed.tools] == TOOLS
        place = next(tool for tool in listed.tools if tool.name == "place_call")
        assert place.input_schema["required"] == ["destination", "assistant_id"]

        assistants = text(await client.call_tool("list_assistants", {}))
        assert SUPPORT_ID in [a["id"] for a in assistants]

        placed = text(
            await client.call_tool(
                "place_call",
                {"destination": DESTINATION, "assistant_id": SUPPORT_ID, "metadata": {"crm": 7}},
            )
        )
        call_id = placed["call_id"]
        # The PBX was asked to dial it, as POST /calls/outbound would.
        assert [o.call_id for o in api.pbx.originated] == [call_id]
        read = text(await client.call_tool("get_call", {"call_id": call_id}))
        assert read["id"] == call_id
        assert read["status"] in ("queued", "connecting", "in-progress")
        assert read["transcript"] == []
        latest = text(await client.call_tool("list_calls", {"limit": 5}))
        assert call_id in [c["id"] for c in latest["calls"]]

        ended = text(
            await client.call_tool("control_call", {"call_id": call_id, "type": "end-call"})
        )
        assert ended["success"] is True
        resp = await api.client.get(f"/calls/{call_id}", headers=api.auth())
        assert (await resp.json())["metadata"] == {"crm": 7}


async def test_over_stdio_a_key_reaches_its_organizations_calls_alone(api: Api) -> None:
    async with stdio(api, api.acme_key) as client:
        placed = text(
            await client.call_tool(
                "place_call", {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
            )
        )
    async with stdio(api, api.globex_key) as client:
        other = await client.call_tool("get_call", {"call_id": placed["call_id"]})
        assert other.is_error
        assert text(other).startswith("404")


@pytest.mark.parametrize(
    ("tool", "arguments", "said"),
    [
        ("get_call", {"call_id": "../organizations"}, "Invalid arguments"),
        (
            "place_call",
            {"destination": "+31612345678&SIP/evil", "assistant_id": SUPPORT_ID},
            "Invalid arguments",
        ),
        ("place_call", {"destination": DESTINATION}, "Invalid arguments"),
        ("control_call", {"call_id": "c1", "type": "hangup"}, "Invalid arguments"),
        ("list_calls", {"limit": 500}, "Invalid arguments"),
        ("place_call", {"destination": DESTINATION, "assistant_id": "nobody"}, "404"),
        ("drop_tables", {}, "There is no tool named drop_tables"),
    ],
)
async def test_bad_arguments_are_the_tools_error_and_dial_nothing(
    api: Api, tool: str, arguments: dict[str, Any], said: str
) -> None:
    async with stdio(api, api.acme_key) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error
    assert text(result).startswith(said), text(result)
    assert api.pbx.originated == []


@pytest.fixture
async def http_server(api: Api) -> AsyncIterator[str]:
    async with aiohttp.ClientSession() as session:
        server = TestServer(http_app(NodeApi(session, str(api.client.make_url("/")))))
        await server.start_server()
        try:
            yield str(server.make_url("/mcp"))
        finally:
            await server.close()


async def test_over_http_each_client_is_scoped_by_its_own_key(api: Api, http_server: str) -> None:
    headers = {"Authorization": f"Bearer {api.acme_key}"}
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        Client(streamable_http_client(http_server, http_client=http), mode="legacy") as client,
    ):
        assert [tool.name for tool in (await client.list_tools()).tools] == TOOLS
        placed = text(
            await client.call_tool(
                "place_call", {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
            )
        )
        assert [o.call_id for o in api.pbx.originated] == [placed["call_id"]]
    async with aiohttp.ClientSession() as plain:
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        async with plain.post(http_server, json=ping) as keyless:
            assert keyless.status == 401
        foreign = {"Origin": "https://evil.example", **headers}
        async with plain.post(http_server, json=ping, headers=foreign) as browsed:
            assert browsed.status == 403
        async with plain.get(http_server, headers=headers) as stream:
            assert stream.status == 405


async def _no_tool(_name: str, _arguments: dict[str, Any]) -> tuple[str, bool]:
    raise AssertionError("no tool is run")


@pytest.mark.parametrize(
    ("message", "answer"),
    [
        (
            b"{not json",
            {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}},
        ),
        (
            b"[1, 2]",
            {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Invalid Request"}},
        ),
        (
            b'{"jsonrpc": "2.0", "id": 4, "method": "server/discover"}',
            {
                "jsonrpc": "2.0",
                "id": 4,
                "error": {"code": -32601, "message": "Method not found: server/discover"},
            },
        ),
        (b'{"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"arguments": {}}}', None),
        (b'{"jsonrpc": "2.0", "method": "notifications/initialized"}', None),
        (
            b'{"jsonrpc": "2.0", "id": 6, "method": "ping"}',
            {"jsonrpc": "2.0", "id": 6, "result": {}},
        ),
    ],
)
async def test_the_protocols_own_answers(message: bytes, answer: dict[str, Any] | None) -> None:
    server = MCPServer(tool_list(), _no_tool, "1.0")
    got = await server.handle(message)
    if answer is None and b'"id"' in message:  # bad params: an error naming them
        assert got is not None
        assert json.loads(got)["error"]["code"] == -32602
        return
    assert (json.loads(got) if got is not None else None) == answer


@pytest.mark.parametrize(
    ("asked", "answered"),
    [("2025-06-18", "2025-06-18"), ("2024-11-05", "2024-11-05"), ("2099-01-01", "2025-11-25")],
)
async def test_initialize_answers_the_clients_version_or_its_newest(
    asked: str, answered: str
) -> None:
    server = MCPServer(tool_list(), _no_tool, "1.0")
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": asked,
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    got = await server.handle(json.dumps(message).encode())
    assert got is not None
    result = json.loads(got)["result"]
    assert result["protocolVersion"] == answered
    assert result["capabilities"] == {"tools": {"listChanged": False}}
    assert result["serverInfo"]["name"] == "voicedock"
