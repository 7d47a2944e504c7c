"""Tools answered with canned results during test calls: the node's tool server as the runner
sees it (``calls/tools/executor.py`` ``ToolServer``). A test call's webhook tool calls are
recorded for its ``tool-called`` expectations; a mocked tool answers its scenario's result and
the organization's server is not asked; any other call goes to the real server."""

from __future__ import annotations

from collections.abc import Mapping

from voicedock.calls.rehearsal.test_calls import ToolUse
from voicedock.calls.tools.executor import ToolServer
from voicedock.domain.json import JsonObject
from voicedock.domain.rehearsal import ToolMock
from voicedock.domain.webhooks import ToolCallRequest
from voicedock.errors import ServerRequestFailed


class MockedTools:
    """The node's ``ToolServer``, with the test calls' mocks in front of ``server``."""

    def __init__(self, server: ToolServer | None) -> None:
        self._server = server
        self._mocks: dict[str, Mapping[str, str]] = {}  # call id -> tool name -> result
        self._used: dict[str, list[ToolUse]] = {}

    def watch(self, call_id: str, mocks: list[ToolMock]) -> None:
        """Record the tool calls of the test call ``call_id``, answering ``mocks``."""
        self._mocks[call_id] = {mock.name: mock.result for mock in mocks}
        self._used[call_id] = []

    def forget(self, call_id: str) -> list[ToolUse]:
        """The test call's tool calls, and no more watching it."""
        self._mocks.pop(call_id, None)
        return self._used.pop(call_id, [])

    async def tool_call(self, request: ToolCallRequest) -> JsonObject:
        mocks = self._mocks.get(request.call_id)
        if mocks is not None:
            self._used[request.call_id].append(ToolUse(request.name, dict(request.arguments)))
            if request.name in mocks:
                return {"result": mocks[request.name]}
        if self._server is None:
            raise ServerRequestFailed("no tool server")
        return await self._server.tool_call(request)


__all__ = ["MockedTools"]
