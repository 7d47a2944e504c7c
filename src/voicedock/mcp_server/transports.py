"""How an MCP client reaches ``voicedock mcp``: stdio or streamable HTTP.

* **stdio** (``serve_stdio``): the client starts ``voicedock mcp`` and writes one JSON-RPC
  message a line to its standard input; each answer is a line on its standard output (logs go
  to standard error). The API key is the operator's choice of environment variable, read once.
* **streamable HTTP** (``http_app``): ``POST /mcp`` with one message; a request is answered
  ``200`` with its JSON answer (the transport's JSON form: no event stream is opened), a
  notification ``202``. Each request carries its client's own API key (``Authorization:
  Bearer``), which its tool calls use: one server serves every organization's clients, each
  scoped by its key. ``GET`` and ``DELETE /mcp``: 405 (no server-sent stream, no session). A
  browser page elsewhere cannot drive it: a request whose ``Origin`` is not this host's is
  refused (403), as the transport asks of a local server.
"""

from __future__ import annotations

import asyncio
import sys
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import urlsplit

from aiohttp import web

from voicedock.mcp_server.protocol import MCPServer
from voicedock.mcp_server.tools import NodeApi, tool_list

MESSAGE_MAX = 1024 * 1024  # bytes of one message
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def server_version() -> str:
    try:
        return version("voicedock")
    except PackageNotFoundError:
        return "0"


async def serve_stdio(api: NodeApi, key: str) -> None:
    """Answer the messages of standard input on standard output until it closes."""
    server = MCPServer(tool_list(), partial(api.run, key), server_version())
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MESSAGE_MAX)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout.buffer
    while line := await reader.readline():
        if not line.strip():
            continue
        answer = await server.handle(line)
        if answer is not None:
            out.write(answer + b"\n")
            out.flush()


def http_app(api: NodeApi) -> web.Application:
    """The streamable HTTP endpoint, ``/mcp``."""
    tools, served = tool_list(), server_version()

    async def message(request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).hostname not in {*LOOPBACK, request.url.host}:
            return web.json_response({"error": "origin not allowed"}, status=403)
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return web.json_response(
                {"error": "an API key is required (Authorization: Bearer)"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        server = MCPServer(tools, partial(api.run, key.strip()), served)
        answer = await server.handle(await request.read())
        if answer is None:
            return web.Response(status=202)
        return web.Response(body=answer, content_type="application/json")

    async def no_stream(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=405, headers={"Allow": "POST"})

    app = web.Application(client_max_size=MESSAGE_MAX)
    app.router.add_post("/mcp", message)
    app.router.add_get("/mcp", no_stream)
    app.router.add_delete("/mcp", no_stream)
    return app
