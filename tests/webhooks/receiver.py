"""A webhook receiver on 127.0.0.1 that verifies Standard Webhooks signatures.

Scripted: each request takes the next entry of ``script`` (a status code, or a full response);
when the script is empty it answers 200. A request whose signature does not verify gets 401
and is counted in ``rejected``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

from voicedock.errors import VerificationError
from voicedock.webhooks.signing import verify


@dataclass
class Received:
    path: str
    msg_id: str
    timestamp: str
    body: bytes
    headers: dict[str, str]
    at: float


@dataclass
class Receiver:
    secret: str
    script: list[int | web.Response] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    accepted: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    redirect_target_hits: int = 0
    hold: asyncio.Event | None = None  # when set, requests wait for it (a slow endpoint)
    in_flight: int = 0
    max_in_flight: int = 0
    server: TestServer | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        app.router.add_post("/elsewhere", self._elsewhere)
        return app

    async def start(self, port: int = 0) -> str:
        self.server = TestServer(self.app(), host="127.0.0.1", port=port)
        await self.server.start_server()
        return self.url

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}/hook"

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def _hook(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hold is not None:
                await self.hold.wait()
            return self._answer(request, body)
        finally:
            self.in_flight -= 1

    def _answer(self, request: web.Request, body: bytes) -> web.StreamResponse:
        headers = dict(request.headers)
        try:
            verified = verify(self.secret, request.headers, body)
        except VerificationError:
            self.rejected += 1
            return web.Response(status=401)
        self.requests.append(
            Received(
                request.path,
                verified.msg_id,
                request.headers["webhook-timestamp"],
                body,
                headers,
                time.monotonic(),
            )
        )
        answer: int | web.Response = self.script.pop(0) if self.script else 200
        response = answer if isinstance(answer, web.Response) else web.Response(status=answer)
        if 200 <= response.status < 300:
            self.accepted[verified.msg_id] += 1
        return response

    async def _elsewhere(self, request: web.Request) -> web.Response:
        self.redirect_target_hits += 1
        return web.Response(status=200)


async def wait_until(predicate: object, timeout: float = 5.0) -> None:
    """Poll ``predicate()`` until true; fail the test after ``timeout`` seconds."""
    assert callable(predicate)
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
