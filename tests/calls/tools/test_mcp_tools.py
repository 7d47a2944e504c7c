"""The MCP client (``calls/tools/mcp.py``, ``mcp_client.py``) against a real MCP server: the
official SDK's, on loopback, answering in server-sent events or in JSON. Listing maps each tool
to what the model is offered (bounded, named apart, ``allowed_tools``); calling returns its
text, ``isError`` a failed result; a dead server offers nothing and a call to it is a failed
result, never an exception; the egress guard refuses loopback unless the operator allows it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from fakes.mcp_standin import BOOKED, McpStandIn, closed_port_url
from voicedock.calls.tools.config import MCP, McpServer
from voicedock.calls.tools.mcp import FAILED_TTL_S, LISTING_TTL_S, McpTools
from voicedock.egress import Egress, EgressPolicy

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

ORG = "org-acme"
SECRET = "Bearer mcp-secret-value-9876"
LOOPBACK = Egress(EgressPolicy(allow_loopback=True))


def server(url: str, **kw: object) -> McpServer:
    return McpServer(url=url, headers=(("Authorization", SECRET),), timeout_s=5, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("json_response", [False, True], ids=["sse", "json"])
async def test_tools_are_listed_offered_and_called(
    json_response: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with McpStandIn(json_response=json_response) as crm:
        mcp = McpTools(LOOPBACK)
        try:
            found = await mcp.found(ORG, [server(crm.url)], taken={"end_call"})
            # huge_form's schema is over the bound, bad.name is no model's name: skipped.
            assert [t.spec.name for t in found] == ["book_appointment", "check_insurance"]
            book = found[0]
            assert book.type == MCP
            assert book.spec.description == "Book an appointment on the given day."
            assert book.spec.parameters["type"] == "object"
            assert "day" in book.spec.parameters["properties"]  # type: ignore[operator]
            assert book.mcp is not None

            booked = await mcp.call(book.mcp, "book_appointment", {"day": "Monday"})
            assert booked.content == BOOKED.format(day="Monday")
            assert not booked.error
            assert crm.booked == [{"day": "Monday"}]

            failed = await mcp.call(book.mcp, "check_insurance", {})
            assert failed.error
            assert "insurance database down" in failed.content
        finally:
            await mcp.aclose()
    logged = caplog.text
    assert "huge_form skipped" in logged
    assert "'bad.name' skipped" in logged
    assert SECRET not in logged


async def test_allowed_tools_and_taken_names() -> None:
    async with McpStandIn() as crm:
        mcp = McpTools(LOOPBACK)
        try:
            only = server(crm.url, allowed_tools=frozenset({"book_appointment"}))
            found = await mcp.found(ORG, [only], taken=())
            assert [t.spec.name for t in found] == ["book_appointment"]
            # The assistant's own tool keeps its name; a second server's same tool is skipped.
            found = await mcp.found(ORG, [server(crm.url), only], taken={"check_insurance"})
            assert [t.spec.name for t in found] == ["book_appointment"]
        finally:
            await mcp.aclose()


async def test_a_dead_server_offers_nothing_and_its_call_is_a_failed_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = server(closed_port_url() + "?token=query-secret")
    mcp = McpTools(LOOPBACK)
    try:
        assert await mcp.found(ORG, [dead], taken=()) == []
        result = await mcp.call(dead, "book_appointment", {"day": "Monday"})
        assert result.error
        assert result.content == "The tool failed: the MCP server could not be reached."
    finally:
        await mcp.aclose()
    assert "offers no tools" in caplog.text
    assert "query-secret" not in caplog.text
    assert SECRET not in caplog.text


async def test_a_server_that_does_not_answer_in_time_offers_nothing() -> None:
    """A server that accepts the connection and never answers: the call's start waits at
    most the listing timeout."""

    answered = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(1)
            await answered.wait()  # never, until the test ends
        finally:
            writer.close()

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    mcp = McpTools(LOOPBACK, list_timeout_s=0.3)
    try:
        async with asyncio.timeout(3):
            assert await mcp.found(ORG, [server(f"http://127.0.0.1:{port}/mcp")], ()) == []
    finally:
        await mcp.aclose()
        answered.set()
        listener.close()
        await listener.wait_closed()


async def test_a_burst_of_calls_lists_once_and_a_failure_is_kept_briefly() -> None:
    now = [0.0]
    async with McpStandIn() as crm:
        mcp = McpTools(LOOPBACK, clock=lambda: now[0])
        try:
            burst = await asyncio.gather(*(mcp.found(ORG, [server(crm.url)], ()) for _ in range(5)))
            assert all(len(found) == 2 for found in burst)
            assert crm.listings == 1
            assert crm.authorizations == {SECRET}  # the server's headers went with each request
            # Another organization's calls list for themselves; after the TTL, listed again.
            await mcp.found("org-globex", [server(crm.url)], ())
            assert crm.listings == 2
            now[0] += LISTING_TTL_S + 1
            await mcp.found(ORG, [server(crm.url)], ())
            assert crm.listings == 3
        finally:
            await mcp.aclose()
    dead = server(closed_port_url())
    mcp = McpTools(LOOPBACK, clock=lambda: now[0])
    try:
        assert await mcp.found(ORG, [dead], ()) == []
        now[0] += FAILED_TTL_S + 1
        assert await mcp.found(ORG, [dead], ()) == []
    finally:
        await mcp.aclose()


async def test_the_egress_guard_refuses_loopback_unless_allowed() -> None:
    async with McpStandIn() as crm:
        mcp = McpTools(Egress(EgressPolicy()))
        try:
            assert await mcp.found(ORG, [server(crm.url)], ()) == []
            result = await mcp.call(server(crm.url), "book_appointment", {"day": "Monday"})
            assert result.error
            assert "URL refused: loopback address" in result.content
            assert crm.booked == []
        finally:
            await mcp.aclose()
