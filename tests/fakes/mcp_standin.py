"""A real MCP server on loopback (the official SDK's ``MCPServer`` over streamable HTTP, served
by uvicorn in the test's loop): ``book_appointment`` records its arguments and answers,
``check_insurance`` fails (``isError``), ``huge_form``'s input schema is over the tenant schema
bound, ``bad.name`` is not a name a model accepts.

    async with McpStandIn() as crm:           # json_response=True: JSON answers, not SSE
        crm.url, crm.booked
"""

from __future__ import annotations

import asyncio
import socket
from types import TracebackType
from typing import Annotated

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field
from starlette.types import Message, Receive, Scope, Send

BOOKED = "Booked for {day} at nine, confirmation RX-42."


class McpStandIn:
    def __init__(self, *, json_response: bool = False) -> None:
        self.booked: list[dict[str, str]] = []
        self.listings = 0
        server: MCPServer = MCPServer("crm")
        self._add_tools(server)
        self._inner = server.streamable_http_app(json_response=json_response)
        self.authorizations: set[str] = set()  # the Authorization headers received
        self._uvicorn: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.url = ""

    def _add_tools(self, server: MCPServer) -> None:
        @server.tool(description="Book an appointment on the given day.")
        def book_appointment(day: str) -> str:
            self.booked.append({"day": day})
            return BOOKED.format(day=day)

        @server.tool(description="Check the caller's insurance plan.")
        def check_insurance() -> str:
            raise ToolError("insurance database down")

        @server.tool(description="A form too big to offer.")
        def huge_form(
            answer: Annotated[str, Field(description="x" * 20_000)],
        ) -> str:
            return answer

        @server.tool(name="bad.name", description="Not a name a model accepts.")
        def bad_name() -> str:
            return "never"

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The SDK's app, counting the tools/list requests and keeping what authorized them."""
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"authorization":
                    self.authorizations.add(value.decode())

        async def counting() -> Message:
            message = await receive()
            if message["type"] == "http.request" and b'"tools/list"' in message.get("body", b""):
                self.listings += 1
            return message

        await self._inner(scope, counting, send)

    async def __aenter__(self) -> McpStandIn:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self._app, log_level="warning", lifespan="on", interface="asgi3")
        self._uvicorn = uvicorn.Server(config)
        self._task = asyncio.create_task(self._uvicorn.serve(sockets=[sock]))
        while not self._uvicorn.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}/mcp"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._uvicorn is not None and self._task is not None:
            self._uvicorn.should_exit = True
            await self._task


def closed_port_url() -> str:
    """An MCP URL on loopback where nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mcp"
