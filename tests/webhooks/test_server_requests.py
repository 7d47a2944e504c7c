"""The requests a call waits for (``tool-calls``, ``assistant-request``): signed like every
webhook, answered within the deadline, refused by the SSRF guard like every endpoint; every
failure is a ``ServerRequestFailed`` with a reason the model can hear."""

from __future__ import annotations

from typing import Any

import pytest

from fakes.tool_server import Answer, ToolServer
from voicedock.domain.records import Call, CallStatus, Direction
from voicedock.domain.webhooks import (
    InboundAssistantRequest,
    ToolCallRequest,
    WebhookEndpoint,
    generate_secret,
)
from voicedock.egress import Egress, EgressPolicy
from voicedock.errors import ServerRequestFailed
from voicedock.webhooks.server_requests import ServerRequests

pytestmark = pytest.mark.unit

SECRET = generate_secret()
META = {"crm_id": "c-42"}


class Endpoints:
    """The store's view the requests need: the organization's endpoints for a type."""

    def __init__(self, *endpoints: WebhookEndpoint) -> None:
        self.endpoints = list(endpoints)

    async def list_webhook_endpoints(
        self, organization_id: str, assistant_id: str | None = None, event_type: str | None = None
    ) -> list[WebhookEndpoint]:
        return [
            e for e in self.endpoints if event_type is None or e.wants(assistant_id, event_type)
        ]

    async def get_call(self, organization_id: str | None, call_id: str) -> Call | None:
        """The call of the request: placed with metadata, which its tool calls carry."""
        if call_id != "call-1":
            return None
        return Call(
            call_id, "org", Direction.OUTBOUND, CallStatus.IN_PROGRESS, None, None, metadata=META
        )


def requests(url: str, *, loopback: bool = True) -> ServerRequests:
    store: Any = Endpoints(WebhookEndpoint("ep", "org", url, SECRET, event_types=["tool-calls"]))
    return ServerRequests(store, Egress(EgressPolicy(allow_loopback=loopback)))


async def ask(client: ServerRequests, timeout_s: float = 5.0) -> dict[str, Any]:
    return await client.tool_call(
        ToolCallRequest(
            organization_id="org",
            assistant_id=None,
            call_id="call-1",
            tool_call_id="call_0",
            name="lookup",
            arguments={"order": "A-17"},
            url=None,
            timeout_s=timeout_s,
        )
    )


async def test_a_signed_request_and_its_answer() -> None:
    async with ToolServer(SECRET, {"lookup": Answer({"result": {"status": "shipped"}})}) as server:
        client = requests(server.url)
        try:
            answer = await ask(client)
        finally:
            await client.aclose()
    assert answer == {"result": {"status": "shipped"}}
    assert server.refused == 0
    (sent,) = server.received
    assert sent["data"]["tool_call"] == {
        "id": "call_0",
        "name": "lookup",
        "arguments": {"order": "A-17"},
    }
    assert sent["metadata"] == META


async def test_a_slow_server_is_a_timeout() -> None:
    async with ToolServer(SECRET, {"lookup": Answer({"result": 1}, delay_s=2)}) as server:
        client = requests(server.url)
        try:
            with pytest.raises(ServerRequestFailed, match="did not answer in time"):
                await ask(client, timeout_s=0.3)
        finally:
            await client.aclose()


async def test_an_error_status_and_a_refused_url_are_failures() -> None:
    async with ToolServer(SECRET, {"lookup": Answer({}, status=503)}) as server:
        client = requests(server.url)
        guarded = requests(server.url, loopback=False)
        try:
            with pytest.raises(ServerRequestFailed, match="HTTP 503"):
                await ask(client)
            with pytest.raises(ServerRequestFailed, match="URL refused"):
                await ask(guarded)
        finally:
            await client.aclose()
            await guarded.aclose()
    assert len(server.received) == 1  # the refused URL was never called


async def test_no_endpoint_for_the_type() -> None:
    store: Any = Endpoints()
    client = ServerRequests(store, Egress(EgressPolicy(allow_loopback=True)))
    with pytest.raises(ServerRequestFailed, match="no webhook endpoint receives tool-calls"):
        await ask(client)
    await client.aclose()


async def test_assistant_request_goes_only_to_endpoints_that_list_it() -> None:
    async with ToolServer(SECRET, {"assistant-request": Answer({"assistant_id": "a1"})}) as server:
        catch_all = WebhookEndpoint("all", "org", server.url, SECRET)
        listing = WebhookEndpoint(
            "ar", "org", server.url, SECRET, event_types=["assistant-request"]
        )
        unasked: Any = Endpoints(catch_all)
        asked: Any = Endpoints(catch_all, listing)
        clients = [
            ServerRequests(store, Egress(EgressPolicy(allow_loopback=True)))
            for store in (unasked, asked)
        ]
        try:
            request = InboundAssistantRequest("org", "c", None, "+31", "n", timeout_s=2)
            with pytest.raises(ServerRequestFailed, match="no webhook endpoint"):
                await clients[0].assistant_request(request)
            answer = await clients[1].assistant_request(request)
        finally:
            for client in clients:
                await client.aclose()
    assert answer == {"assistant_id": "a1"}
    assert len(server.received) == 1


async def test_an_endless_answer_is_cut_at_the_cap() -> None:
    from fakes.local_server import LocalServer, Scripted
    from voicedock.egress import ResponseCaps

    server = LocalServer()
    server.route("POST", "/tools")
    server.replies.append(Scripted(chunks=[b'{"result": "' + b"x" * 8000], endless=True))
    async with server:
        store: Any = Endpoints(
            WebhookEndpoint("ep", "org", server.url + "/tools", SECRET, event_types=["tool-calls"])
        )
        caps = ResponseCaps(server_answer_bytes=64_000)
        client = ServerRequests(store, Egress(EgressPolicy(allow_loopback=True), caps=caps))
        try:
            with pytest.raises(ServerRequestFailed, match="answer is too large"):
                await ask(client, timeout_s=10)
        finally:
            await client.aclose()
