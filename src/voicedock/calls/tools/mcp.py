"""``McpTools``: the node's MCP client, for the assistants' ``mcp`` tools.

    mcp = McpTools(egress)
    found = await mcp.found(organization_id, mcp_servers(config), taken={"lookup", "end_call"})
    result = await mcp.call(tool.mcp, "book_appointment", {"day": "Monday"})   # a ToolResult
    await mcp.aclose()

When a call starts, each MCP server of its assistant is asked for its tools (all servers at
once, each within ``min(timeout_seconds, LIST_TIMEOUT_S)``); a server that fails or does not
answer in time is logged (its URL without credentials or query, never a header) and offers
nothing: the call starts and talks all the same. A listing is kept ``LISTING_TTL_S`` per
organization, URL and headers (a failure ``FAILED_TTL_S``), so a burst of calls lists once.

Each listed tool becomes one the model is offered (``AssistantTool``, type ``mcp``) unless
``allowed_tools`` leaves it out, its name is not one an OpenAI-compatible API accepts or is
taken (by the assistant's other tools, or an earlier server's), or its ``inputSchema`` is not
bounded as a tenant's tool parameters are (``check_tenant_schema``): such a tool is skipped
and logged. Its description is cut to ``MAX_DESCRIPTION_CHARS``.

``call`` runs one ``tools/call`` in a session of its own, within the tool's timeout: the
result's text blocks (at most ``MAX_RESULT_CHARS``) are what the model reads, ``isError`` a
failed result; every failure is a result the model can speak about, never an exception.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Collection, Iterator, Sequence

from voicedock.calls.tools.config import (
    MCP,
    AssistantTool,
    McpServer,
    assistant_tools,
    mcp_servers,
    tool_name_ok,
)
from voicedock.calls.tools.mcp_client import ListedTool, McpSession
from voicedock.domain.assistant_config import AssistantConfig
from voicedock.domain.json import JsonObject, json_object
from voicedock.domain.tenant_schemas import check_tenant_schema
from voicedock.domain.webhooks import redact
from voicedock.egress import Egress
from voicedock.egress.lazy_session import LazySession
from voicedock.errors import BadRequest, ServerRequestFailed
from voicedock.pipeline.tools import HANDOFF, NAVIGATE_MENU, ToolResult, ToolSpec

log = logging.getLogger("voicedock.calls")

USER_AGENT = "voicedock-mcp/0.1"
LIST_TIMEOUT_S = 5.0  # the longest a call's start waits for a server's tools
LISTING_TTL_S = 60.0
FAILED_TTL_S = 10.0
MAX_CACHED = 512  # listings kept
MAX_OFFERED = 32  # tools offered of one server
MAX_DESCRIPTION_CHARS = 2_000
MAX_RESULT_CHARS = 4_000

Listing = tuple[ListedTool, ...] | None  # None: the server failed


class McpTools:
    def __init__(
        self,
        egress: Egress,
        *,
        clock: Callable[[], float] = time.monotonic,
        list_timeout_s: float = LIST_TIMEOUT_S,
    ) -> None:
        self._egress = egress
        self._clock = clock
        self._list_timeout_s = list_timeout_s
        self._http = LazySession(
            lambda: egress.session(headers={"User-Agent": USER_AGENT}),
            lambda: ServerRequestFailed("voicedock is stopping"),
        )
        self._cache: dict[str, tuple[float, Listing]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def found(
        self, organization_id: str, servers: Sequence[McpServer], taken: Collection[str]
    ) -> list[AssistantTool]:
        """The tools ``servers`` offer a call now, named apart from ``taken``."""
        if not servers:
            return []
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._listing(organization_id, s)) for s in servers]
        names = set(taken)
        found: list[AssistantTool] = []
        for server, task in zip(servers, tasks, strict=True):
            found += _offered(server, task.result() or (), names)
        return found

    async def call(self, server: McpServer, name: str, arguments: JsonObject) -> ToolResult:
        """One ``tools/call``; its result, or a failed one (never an exception)."""
        try:
            async with asyncio.timeout(server.timeout_s):
                session = McpSession(self._http.get(), self._egress, server)
                await session.open()
                answer = await session.call_tool(name, arguments)
        except TimeoutError:
            reason = "the MCP server did not answer in time"
        except ServerRequestFailed as exc:
            reason = exc.reason
        else:
            text = answer.text[:MAX_RESULT_CHARS]
            if answer.is_error:
                return ToolResult(f"The tool failed: {text or 'no reason given'}", error=True)
            return ToolResult(text)
        log.info("MCP tool %s on %s failed: %s", name, redact(server.url), reason)
        return ToolResult(f"The tool failed: {reason}.", error=True)

    async def aclose(self) -> None:
        """Close the HTTP session (idempotent); later requests fail."""
        await self._http.aclose()

    async def _listing(self, organization_id: str, server: McpServer) -> Listing:
        key = _key(organization_id, server)
        if (kept := self._kept(key)) is not None:
            return kept[1]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # a burst of calls: the first lists, the others read its listing
            if (kept := self._kept(key)) is not None:
                return kept[1]
            listing = await self._list(server)
            self._keep(key, listing)
        if self._locks.get(key) is lock and not lock.locked():
            del self._locks[key]
        return listing

    async def _list(self, server: McpServer) -> Listing:
        try:
            async with asyncio.timeout(min(server.timeout_s, self._list_timeout_s)):
                session = McpSession(self._http.get(), self._egress, server)
                await session.open()
                return tuple(await session.list_tools())
        except TimeoutError:
            reason = "it did not answer in time"
        except ServerRequestFailed as exc:
            reason = exc.reason
        log.warning("MCP server %s offers no tools: %s", redact(server.url), reason)
        return None

    def _kept(self, key: str) -> tuple[float, Listing] | None:
        kept = self._cache.get(key)
        if kept is None or kept[0] <= self._clock():
            return None
        return kept

    def _keep(self, key: str, listing: Listing) -> None:
        now = self._clock()
        if len(self._cache) >= MAX_CACHED:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            while len(self._cache) >= MAX_CACHED:  # the oldest kept go first
                del self._cache[next(iter(self._cache))]
        ttl = LISTING_TTL_S if listing is not None else FAILED_TTL_S
        self._cache[key] = (now + ttl, listing)


async def assistant_mcp_tools(
    mcp: McpTools | None, organization_id: str, config: AssistantConfig
) -> list[AssistantTool]:
    """The tools the MCP servers of an assistant's (checked) configuration offer a call now,
    named apart from its other tools and the call's own (``handoff``, ``navigate_menu``)."""
    servers = mcp_servers(config)
    if mcp is None or not servers:
        return []
    taken = {tool.spec.name for tool in assistant_tools(config)} | {HANDOFF, NAVIGATE_MENU}
    return await mcp.found(organization_id, servers, taken)


def _key(organization_id: str, server: McpServer) -> str:
    """The cache key of a server as an organization names it (a digest: no header kept)."""
    named = json.dumps([organization_id, server.url, sorted(server.headers)])
    return hashlib.sha256(named.encode()).hexdigest()


def _offered(
    server: McpServer, listing: Sequence[ListedTool], names: set[str]
) -> Iterator[AssistantTool]:
    """The tools of ``listing`` the model is offered (each name added to ``names``)."""
    count = 0
    for listed in listing:
        allowed = server.allowed_tools
        if allowed is not None and listed.name not in allowed:
            continue
        spec = _spec(listed, names, redact(server.url))
        if spec is None:
            continue
        if count == MAX_OFFERED:
            log.warning("MCP server %s: only %d tools offered", redact(server.url), MAX_OFFERED)
            return
        count += 1
        names.add(spec.name)
        yield AssistantTool(type=MCP, spec=spec, timeout_s=server.timeout_s, mcp=server)


def _spec(listed: ListedTool, names: Collection[str], shown_url: str) -> ToolSpec | None:
    """``listed`` as offered, or None (logged) when it cannot be offered."""
    name = listed.name
    if not tool_name_ok(name):
        log.warning("MCP server %s: tool %.64r skipped: not a valid name", shown_url, name)
        return None
    if name in names:
        log.warning("MCP server %s: tool %s skipped: the name is taken", shown_url, name)
        return None
    schema = json_object(listed.input_schema)
    if schema is None or schema.get("type", "object") != "object":
        log.warning("MCP server %s: tool %s skipped: inputSchema not an object", shown_url, name)
        return None
    try:
        check_tenant_schema(schema, "inputSchema", applied=False)
    except BadRequest as exc:
        log.warning("MCP server %s: tool %s skipped: %s", shown_url, name, exc)
        return None
    return ToolSpec(name, listed.description[:MAX_DESCRIPTION_CHARS], {"type": "object", **schema})
