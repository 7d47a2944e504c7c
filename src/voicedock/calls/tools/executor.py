"""``CallTools``: how the tools of one call are carried out (the pipeline's ``ToolExecutor``).

* a ``webhook`` tool is a ``tool-calls`` request to the organization's server (``ToolServer``,
  the webhooks' ``ServerRequests``): its answer's ``result`` goes back to the model, its
  ``error`` (or no usable answer in time) becomes a failed result the model can speak about;
* ``transfer_call`` asks for the transfer as ``POST /calls/{id}/control`` would (the transfer
  policy decides) to one of the tool's destinations, after what is being said; the model's
  turn ends there;
* ``send_dtmf`` plays the digits on the call's leg through the PBX (``DtmfPbx``).

``end_call`` is the conversation's own. Nothing here raises for a tool's failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from voicedock.calls.control import Transfer
from voicedock.calls.tools.config import WEBHOOK, AssistantTool
from voicedock.domain.json import JsonObject
from voicedock.domain.records import Call
from voicedock.domain.webhooks import ToolCallRequest
from voicedock.errors import PbxError, ServerRequestFailed
from voicedock.pbx.base import DtmfPbx, Pbx, require_dtmf_digits
from voicedock.pipeline.frames import ToolCall
from voicedock.pipeline.tools import (
    SEND_DTMF,
    TRANSFER_CALL,
    ToolResult,
    parse_arguments,
    result_text,
)

log = logging.getLogger("voicedock.calls")


class ToolServer(Protocol):
    """Where webhook tools run (``voicedock.webhooks.server_requests.ServerRequests``)."""

    async def tool_call(self, request: ToolCallRequest) -> JsonObject:
        """The server's JSON answer; ``ServerRequestFailed`` when there is none."""
        ...


class CallTools:
    def __init__(
        self,
        call: Call,
        tools: Sequence[AssistantTool],
        *,
        server: ToolServer | None,
        pbx: Pbx,
        transfer: Callable[[Transfer], None],
    ) -> None:
        """``transfer`` starts the call's transfer without waiting for it (the runner owns
        it: the transfer outlives the conversation that asked for it)."""
        self._call = call
        self._tools = {tool.spec.name: tool for tool in tools}
        self._server = server
        self._pbx = pbx
        self._transfer = transfer

    async def run(self, call: ToolCall) -> ToolResult:
        tool = self._tools.get(call.name)
        if tool is None:
            return ToolResult(f"There is no tool named {call.name}.", error=True)
        try:
            arguments = parse_arguments(call)
        except ValueError:
            return ToolResult("The arguments were not a JSON object.", error=True)
        if tool.type == WEBHOOK:
            return await self._webhook(tool, call, arguments)
        if tool.type == TRANSFER_CALL:
            return self._start_transfer(tool, arguments)
        if tool.type == SEND_DTMF:
            return await self._send_dtmf(arguments)
        return ToolResult(f"The tool {call.name} is not available.", error=True)

    async def _webhook(
        self, tool: AssistantTool, call: ToolCall, arguments: JsonObject
    ) -> ToolResult:
        if self._server is None:
            return ToolResult("No server runs this tool.", error=True)
        try:
            request = ToolCallRequest(
                organization_id=self._call.organization_id,
                assistant_id=self._call.assistant_id,
                call_id=self._call.id,
                tool_call_id=call.id,
                name=call.name,
                arguments=arguments,
                url=tool.url,
                timeout_s=tool.timeout_s,
            )
            answer = await self._server.tool_call(request)
        except ServerRequestFailed as exc:
            log.info("tool %s failed: %s", call.name, exc.reason)
            return ToolResult(f"The tool failed: {exc.reason}.", error=True)
        if answer.get("error") is not None:
            return ToolResult(f"The tool failed: {result_text(answer['error'])}", error=True)
        return ToolResult(result_text(answer.get("result", "")))

    def _start_transfer(self, tool: AssistantTool, arguments: JsonObject) -> ToolResult:
        destination = arguments.get("destination")
        if not isinstance(destination, str) or destination not in tool.destinations:
            allowed = ", ".join(tool.destinations)
            return ToolResult(f"The destination must be one of: {allowed}.", error=True)
        self._transfer(Transfer(destination, announcement=tool.message, mode=tool.mode))
        return ToolResult(f"Transferring the caller to {destination}.", end_turn=True)

    async def _send_dtmf(self, arguments: JsonObject) -> ToolResult:
        try:
            digits = require_dtmf_digits(str(arguments.get("digits", "")))
        except ValueError as exc:
            return ToolResult(str(exc), error=True)
        if not isinstance(self._pbx, DtmfPbx):
            return ToolResult("This phone system cannot send keys.", error=True)
        try:
            await self._pbx.send_dtmf(self._call.id, digits)
        except PbxError as exc:
            log.info("send_dtmf failed: %s", type(exc).__name__)
            return ToolResult("The keys could not be sent.", error=True)
        return ToolResult(f"Pressed {digits}.")
