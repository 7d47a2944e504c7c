"""An assistant's ``mcp`` tools over REST: their shape checked (a 400 naming the field), their
server's headers secrets (masked on every read, kept when sent back masked, never sent to a
changed URL unless given again in clear), and not a tool template's."""

from __future__ import annotations

from typing import Any

import pytest

from api.conftest import Api

pytestmark = pytest.mark.unit

TOKEN = "Bearer crm-token-abcdef-1234"
API_KEY = "key-0123456789-wxyz"
MCP = {
    "type": "mcp",
    "server": {
        "url": "https://crm.example.com/mcp",
        "headers": {"Authorization": TOKEN, "X-Api-Key": API_KEY},
    },
    "allowed_tools": ["book_appointment"],
    "timeout_seconds": 10,
}


async def _send(api: Api, method: str, path: str, body: object) -> tuple[int, Any]:
    resp = await api.client.request(method, path, json=body, headers=api.auth())
    return resp.status, await resp.json() if resp.status != 204 else None


@pytest.mark.parametrize(
    ("tool", "message"),
    [
        ({"type": "mcp"}, "tools[0].server is required"),
        ({"type": "mcp", "server": {"url": "ftp://x"}}, "tools[0].server.url must be an http(s)"),
        (
            {"type": "mcp", "server": {"url": "https://x.example", "path": "/"}},
            "tools[0].server",
        ),
        (
            {"type": "mcp", "server": {"url": "https://x.example", "headers": {"a b": "c"}}},
            "tools[0].server.headers: a header name must be a token",
        ),
        (
            {"type": "mcp", "server": {"url": "https://x.example", "headers": {"X-K": "a\r\nb"}}},
            "tools[0].server.headers.X-K must be a string",
        ),
        (
            {"type": "mcp", "server": {"url": "https://x.example", "headers": {"X-K": 5}}},
            "tools[0].server.headers.X-K must be a string",
        ),
        (
            {"type": "mcp", "server": {"url": "https://x.example", "headers": {"Host": "h"}}},
            "tools[0].server.headers.Host is set by voicedock",
        ),
        (
            {
                "type": "mcp",
                "server": {
                    "url": "https://x.example",
                    "headers": {f"X-{i}": "v" for i in range(17)},
                },
            },
            "tools[0].server.headers: at most 16 headers",
        ),
        (
            {"type": "mcp", "server": {"url": "https://x.example"}, "allowed_tools": ["a.b"]},
            "tools[0].allowed_tools must be a list",
        ),
        (
            {"type": "mcp", "server": {"url": "https://x.example"}, "name": "crm"},
            "tools[0]",
        ),
        (
            {"type": "mcp", "server": {"url": "https://x.example"}, "timeout_seconds": 500},
            "timeout_seconds",
        ),
        (
            {"type": "mcp", "server": {"url": "http://10.1.2.3/mcp"}},
            "tools[0].server.url: private address",
        ),
    ],
)
async def test_a_bad_mcp_tool_is_a_400_naming_the_field(
    api: Api, tool: dict[str, Any], message: str
) -> None:
    status, body = await _send(api, "POST", "/assistants", {"name": "CRM", "tools": [tool]})
    assert status == 400, body
    assert message in body["message"], body
    assert "a\r\nb" not in body["message"]


async def test_two_mcp_servers_and_a_webhook_tool_are_one_assistants_tools(api: Api) -> None:
    other = {"type": "mcp", "server": {"url": "https://calendar.example.com/mcp"}}
    tools = [MCP, other, {"name": "lookup"}, {"type": "end_call"}]
    status, body = await _send(api, "POST", "/assistants", {"name": "CRM", "tools": tools})
    assert status == 201, body
    assert body["tools"][1] == other


async def test_headers_read_masked_and_are_kept_when_sent_back_masked(api: Api) -> None:
    status, created = await _send(api, "POST", "/assistants", {"name": "CRM", "tools": [MCP]})
    assert status == 201, created
    shown = created["tools"][0]["server"]["headers"]
    assert shown == {"Authorization": "****1234", "X-Api-Key": "****wxyz"}
    path = f"/assistants/{created['id']}"
    status, read = await _send(api, "GET", path, None)
    assert read["tools"] == created["tools"]
    assert TOKEN not in str(read)
    assert API_KEY not in str(read)

    # Sent back as read (masked), with another change: the stored headers stay.
    status, patched = await _send(api, "PATCH", path, {"tools": read["tools"], "name": "CRM 2"})
    assert status == 200, patched
    stored = await api.service.store.get_assistant(None, created["id"])
    assert stored is not None
    assert stored.config.tools == [MCP]

    # A masked value that matches no stored header is refused, nothing changes.
    wrong = {**MCP, "server": {**MCP["server"], "headers": {"Authorization": "****9999"}}}
    status, refused = await _send(api, "PATCH", path, {"tools": [wrong]})
    assert status == 400, refused
    assert "tools[0].server.headers.Authorization is a masked value" in refused["message"]


async def test_a_stored_header_does_not_follow_a_changed_url(api: Api) -> None:
    status, created = await _send(api, "POST", "/assistants", {"name": "CRM", "tools": [MCP]})
    path = f"/assistants/{created['id']}"
    moved = {**created["tools"][0]}
    moved["server"] = {**moved["server"], "url": "https://evil.example.com/mcp"}
    status, refused = await _send(api, "PATCH", path, {"tools": [moved]})
    assert status == 422, refused
    assert refused["message"].startswith(
        "tools[0].server.headers.Authorization must be given again in clear"
    )
    stored = await api.service.store.get_assistant(None, created["id"])
    assert stored is not None
    assert stored.config.tools == [MCP]
    # Given again in clear, the headers go to the new URL.
    clear = {**MCP, "server": {**MCP["server"], "url": "https://evil.example.com/mcp"}}
    status, moved_ok = await _send(api, "PATCH", path, {"tools": [clear]})
    assert status == 200, moved_ok


async def test_an_mcp_tool_is_not_a_tool_template(api: Api) -> None:
    status, body = await _send(api, "POST", "/tool-templates", MCP)
    assert status == 400, body
    assert "an mcp tool is given in an assistant's tools" in body["message"]
