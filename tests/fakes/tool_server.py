"""The organization's server for ``tool-calls`` and ``assistant-request`` on 127.0.0.1 (port
0): it checks every request's Standard Webhooks signature (401 when it does not match, and the
test sees it in ``refused``), keeps what it was sent, and answers by a script per request.

    async with ToolServer(secret, {"book": Answer({"result": "booked"}, delay_s=2)}) as server:
        settings.webhooks.endpoints = [... url=server.url, secret=secret ...]
        ...
        request = await server.wait_request()
        assert request["data"]["tool_call"]["arguments"] == {"day": "Monday"}

A ``tool-calls`` request is answered by the script of its tool's name, an
``assistant-request`` by the script under ``"assistant-request"``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fakes.local_server import LocalServer
from fakes.world import ACME
from voicedock.config import WebhookEndpointSettings
from voicedock.errors import VerificationError
from voicedock.webhooks.signing import verify

PATH = "/voicedock/tools"


@dataclass(frozen=True, slots=True)
class Answer:
    body: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    delay_s: float = 0.0


class ToolServer:
    def __init__(self, secret: str, answers: dict[str, Answer]) -> None:
        self.secret = secret
        self.answers = answers
        self.received: list[dict[str, Any]] = []
        self.refused = 0
        self._server = LocalServer()
        self._arrived = asyncio.Condition()

    @property
    def url(self) -> str:
        return self._server.url + PATH

    def endpoint(self, *event_types: str) -> WebhookEndpointSettings:
        """ACME's configured endpoint for ``event_types`` that is this server."""
        return WebhookEndpointSettings(
            name="router",
            organization=ACME,
            url=self.url,
            secret=self.secret,
            event_types=list(event_types),
        )

    async def __aenter__(self) -> ToolServer:
        self._server.route("POST", PATH, self._handle)
        await self._server.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.__aexit__(*exc)

    async def wait_request(self, count: int = 1, timeout: float = 30.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)
        return self.received[count - 1]

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            verify(self.secret, request.headers, raw)
        except VerificationError:
            self.refused += 1
            return web.Response(status=401)
        payload = json.loads(raw)
        async with self._arrived:
            self.received.append(payload)
            self._arrived.notify_all()
        if payload["type"] == "tool-calls":
            key = payload["data"]["tool_call"]["name"]
        else:
            key = payload["type"]
        answer = self.answers.get(key, Answer({"error": f"unknown {key}"}))
        await asyncio.sleep(answer.delay_s)
        return web.json_response(answer.body, status=answer.status)
