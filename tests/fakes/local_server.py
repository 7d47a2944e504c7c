"""A loopback aiohttp server for provider tests and the LLM stand-in: port 0, recorded
requests, scripted replies (status, headers, body replayed as the given byte chunks), always
stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    form: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scripted:
    """One reply: `chunks` are written one by one with `gap_s` between them; `hang_s`
    delays the first byte; `cut` drops the connection after the chunks (broken stream)."""

    status: int = 200
    chunks: Sequence[bytes] = ()
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/octet-stream"
    gap_s: float = 0.0
    hang_s: float = 0.0
    cut: bool = False
    endless: bool = False  # keep writing the last chunk until the client goes away


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LocalServer:
    def __init__(self) -> None:
        self.app = web.Application()
        self.requests: list[Recorded] = []
        self.replies: list[Scripted] = []
        self.client_gone = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, method: str, path: str, handler: Handler | None = None) -> None:
        self.app.router.add_route(method, path, handler or self.scripted_handler)

    async def __aenter__(self) -> LocalServer:
        self._runner = web.AppRunner(self.app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def record(self, request: web.Request) -> Recorded:
        form: dict[str, Any] = {}
        body = b""
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                assert isinstance(part, BodyPartReader)
                data = await part.read()
                filename = getattr(part, "filename", None)
                ctype = part.headers.get("Content-Type", "")
                form[part.name or ""] = (
                    {"filename": filename, "content_type": ctype, "data": bytes(data)}
                    if filename
                    else bytes(data).decode()
                )
        else:
            body = await request.read()
        rec = Recorded(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            body=body,
            form=form,
        )
        self.requests.append(rec)
        return rec

    async def scripted_handler(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        reply = self.replies.pop(0) if self.replies else Scripted()
        if reply.hang_s:
            await asyncio.sleep(reply.hang_s)
        response = web.StreamResponse(status=reply.status, headers=reply.headers)
        response.content_type = reply.content_type
        if reply.cut:
            # Announce more than we send so the client sees a truncated payload.
            response.content_length = sum(len(c) for c in reply.chunks) + 1000
        await response.prepare(request)
        try:
            for chunk in reply.chunks:
                await response.write(chunk)
                if reply.gap_s:
                    await asyncio.sleep(reply.gap_s)
            while reply.endless:
                await response.write(reply.chunks[-1] if reply.chunks else b"\0\0")
                await asyncio.sleep(0.01)
        except (ConnectionResetError, ConnectionError):
            self.client_gone.set()
            return response
        if reply.cut:
            assert request.transport is not None
            request.transport.close()
            return response
        await response.write_eof()
        return response
