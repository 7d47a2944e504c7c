"""``CallTools``: how the tools of one call are carried out (the pipeline's ``ToolExecutor``).

* a ``webhook`` tool is a ``tool-calls`` request to the organization's server (``ToolServer``,
  the webhooks' ``ServerRequests``): its answer's ``result`` goes back to the model, its
  ``error`` (or no usable answer in time) becomes a failed result the model can speak about;
* ``transfer_call`` asks for the transfer as ``POST /calls/{id}/control`` would (the transfer
  policy decides) to one of the tool's destinations, after what is being said; the model's
  turn ends there;
* ``send_dtmf`` plays the digits on the call's leg through the PBX (``DtmfPbx``);
* ``collect_secure_digits`` opens the call's secure keypad entry (``SecureKeys``: the keys
  collected while the call is in secure mode; its prompt is what the caller hears as the tool
  starts, ``spoken``, where the tool filler would be), then sends the digits to the
  organization's server as the ``tool-calls`` request of a webhook tool would, in its
  ``arguments`` (``digits``, ``ended_by``); the model reads only the server's answer, or that
  the entry was not complete (then nothing is sent).

* an ``mcp`` tool (one an MCP server listed when the call started, ``found``) is a
  ``tools/call`` on that server (``McpTools``, ``calls/tools/mcp.py``).
* ``search_knowledge`` (offered when the assistant's ``knowledge`` retrieves by tool) searches
  its knowledge bases (``CallKnowledge``, ``calls/tools/knowledge.py``), which also search each
  turn's words when it retrieves ``every_turn`` (``turn_knowledge``).

``end_call`` is the conversation's own. Nothing here raises for a tool's failure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from voicedock.calls.control import Transfer
from voicedock.calls.tools.config import (
    DEFAULT_SECURE_PROMPT,
    MAX_DIGIT_TIMEOUT_SECONDS,
    MCP,
    SECURE_TERMINATORS,
    WEBHOOK,
    AssistantTool,
)
from voicedock.domain.json import JsonObject
from voicedock.domain.knowledge import EVERY_TURN, SEARCH_KNOWLEDGE
from voicedock.domain.records import Call
from voicedock.domain.squads import CallMember
from voicedock.domain.webhooks import ToolCallRequest
from voicedock.errors import PbxError, ServerRequestFailed
from voicedock.pbx.base import DtmfPbx, Pbx, require_dtmf_digits
from voicedock.pipeline.frames import ToolCall
from voicedock.pipeline.hearing.secure_digits import SecureDigits, SecureDigitsPlan
from voicedock.pipeline.tools import (
    COLLECT_SECURE_DIGITS,
    SEND_DTMF,
    TRANSFER_CALL,
    ToolResult,
    ToolSpec,
    TurnKnowledge,
    parse_arguments,
    result_text,
)

if TYPE_CHECKING:
    from voicedock.calls.tools.knowledge import CallKnowledge
    from voicedock.calls.tools.mcp import McpTools

log = logging.getLogger("voicedock.calls")
MAX_PROMPT_CHARS = 500  # a prompt the model gives
# The pace of speech: the caller's first key is awaited this long a character of the prompt
# more than ``digit_timeout_seconds``, since the prompt is heard as the entry opens.
PROMPT_S_PER_CHAR = 0.08


class SecureKeys(Protocol):
    """The call's secure keypad entry (``voicedock.calls.live.secure_keypad.SecureKeypad``)."""

    async def collect(self, plan: SecureDigitsPlan, first_key_after_s: float) -> SecureDigits:
        """Collect one entry in secure mode (its first key given ``first_key_after_s`` more
        than the plan's timeout); the entry once it ended. The call stays in secure mode
        until ``release``."""
        ...

    def release(self) -> None:
        """The tool is done with the entry (its server answered): secure mode ends."""
        ...


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
        secure_keys: SecureKeys | None = None,
        member: CallMember | None = None,
        mcp: McpTools | None = None,
        knowledge: CallKnowledge | None = None,
    ) -> None:
        """``transfer`` starts the call's transfer without waiting for it (the runner owns
        it: the transfer outlives the conversation that asked for it); ``secure_keys``: the
        call's secure keypad entry; ``member``: the squad's member whose tools these are: the
        ``tool-calls`` request names its saved assistant (None: a configuration of its own),
        and goes to that assistant's endpoint (else the call's assistant's); ``mcp``: where
        the tools an MCP server listed (``tools`` of type ``mcp``) are called; ``knowledge``:
        the assistant's knowledge bases."""
        self._call = call
        self._assistant_id = call.assistant_id if member is None else member.assistant_id
        self._tools = {tool.spec.name: tool for tool in tools}
        self._server = server
        self._pbx = pbx
        self._transfer = transfer
        self._secure_keys = secure_keys
        self._mcp = mcp
        self._knowledge = knowledge

    def found(self) -> tuple[ToolSpec, ...]:
        """The tools MCP servers listed as the call started and ``search_knowledge``
        (``FoundTools``): offered besides the configured ones."""
        listed = tuple(tool.spec for tool in self._tools.values() if tool.type == MCP)
        return listed if self._knowledge is None else (*self._knowledge.specs(), *listed)

    def turn_knowledge(self) -> TurnKnowledge | None:
        """``KnowingTools``: the knowledge bases, when each turn's words are searched."""
        knowledge = self._knowledge
        return knowledge if knowledge is not None and knowledge.retrieval == EVERY_TURN else None

    def spoken(self, call: ToolCall) -> str | None:
        """A ``collect_secure_digits`` call's prompt, heard as it starts (``SpeakingTools``)."""
        tool = self._tools.get(call.name)
        if tool is None or tool.type != COLLECT_SECURE_DIGITS:
            return None
        try:
            return _prompt(tool, parse_arguments(call))
        except ValueError:
            return None

    async def run(self, call: ToolCall) -> ToolResult:
        tool = self._tools.get(call.name)
        knowledge = self._knowledge if call.name == SEARCH_KNOWLEDGE else None
        if tool is None and (knowledge is None or not knowledge.specs()):
            return ToolResult(f"There is no tool named {call.name}.", error=True)
        try:
            arguments = parse_arguments(call)
        except ValueError:
            return ToolResult("The arguments were not a JSON object.", error=True)
        if tool is None:
            assert knowledge is not None
            return await knowledge.tool(arguments)
        if tool.type == WEBHOOK:
            return await self._webhook(tool, call, arguments)
        if tool.type == TRANSFER_CALL:
            return self._start_transfer(tool, arguments)
        if tool.type == SEND_DTMF:
            return await self._send_dtmf(arguments)
        if tool.type == COLLECT_SECURE_DIGITS:
            return await self._collect_secure_digits(tool, call, arguments)
        if tool.type == MCP and tool.mcp is not None and self._mcp is not None:
            return await self._mcp.call(tool.mcp, call.name, arguments)
        return ToolResult(f"The tool {call.name} is not available.", error=True)

    async def _webhook(
        self, tool: AssistantTool, call: ToolCall, arguments: JsonObject
    ) -> ToolResult:
        if self._server is None:
            return ToolResult("No server runs this tool.", error=True)
        return await self._ask_server(self._server, tool, call, arguments)

    async def _ask_server(
        self, server: ToolServer, tool: AssistantTool, call: ToolCall, arguments: JsonObject
    ) -> ToolResult:
        try:
            request = ToolCallRequest(
                organization_id=self._call.organization_id,
                assistant_id=self._assistant_id,
                call_id=self._call.id,
                tool_call_id=call.id,
                name=call.name,
                arguments=arguments,
                url=tool.url,
                timeout_s=tool.timeout_s,
            )
            answer = await server.tool_call(request)
        except ServerRequestFailed as exc:
            log.info("tool %s failed: %s", call.name, exc.reason)
            return ToolResult(f"The tool failed: {exc.reason}.", error=True)
        if answer.get("error") is not None:
            return ToolResult(f"The tool failed: {result_text(answer['error'])}", error=True)
        return ToolResult(result_text(answer.get("result", "")))

    async def _collect_secure_digits(
        self, tool: AssistantTool, call: ToolCall, arguments: JsonObject
    ) -> ToolResult:
        server, keys = self._server, self._secure_keys
        if server is None:
            return ToolResult("No server runs this tool.", error=True)
        if keys is None or tool.secure_digits is None:
            return ToolResult("This call cannot collect keys securely.", error=True)
        try:
            plan = _secure_plan(tool.secure_digits, arguments)
        except ValueError as exc:
            return ToolResult(str(exc), error=True)
        prompt_s = len(_prompt(tool, arguments)) * PROMPT_S_PER_CHAR
        try:  # secure mode until the server answered: a key pressed meanwhile is the entry's
            entry = await keys.collect(plan, prompt_s)
            if not entry.complete:
                return ToolResult(_incomplete(entry), error=True)
            sent: JsonObject = {**arguments, "digits": entry.digits, "ended_by": entry.ended_by}
            return await self._ask_server(server, tool, call, sent)
        finally:
            keys.release()

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


def _secure_plan(configured: SecureDigitsPlan, arguments: JsonObject) -> SecureDigitsPlan:
    """The tool's entry with what the model asked for (a ``length`` within the tool's
    bounds, a ``terminator``, ``digit_timeout_seconds``); ``ValueError`` says what is wrong."""
    low, high = configured.min_digits, configured.max_digits
    terminator, timeout_s = configured.terminator, configured.timeout_s
    length = arguments.get("length")
    if length is not None:
        if not isinstance(length, int) or isinstance(length, bool) or not low <= length <= high:
            raise ValueError(f"The length must be a whole number from {low} to {high}.")
        low = high = length
    asked = arguments.get("terminator")
    if asked is not None:
        if asked not in SECURE_TERMINATORS:
            raise ValueError(f"The terminator must be one of: {' '.join(SECURE_TERMINATORS)}")
        terminator = str(asked) or None
    seconds = arguments.get("digit_timeout_seconds")
    if seconds is not None:
        top = MAX_DIGIT_TIMEOUT_SECONDS
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            raise ValueError(f"digit_timeout_seconds must be a number from 1 to {top}.")
        if not 1 <= seconds <= top:
            raise ValueError(f"digit_timeout_seconds must be a number from 1 to {top}.")
        timeout_s = float(seconds)
    return SecureDigitsPlan(low, high, terminator, timeout_s)


def _prompt(tool: AssistantTool, arguments: JsonObject) -> str:
    """What the caller is asked: the model's ``prompt``, else the tool's, else the default."""
    prompt = arguments.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        prompt = tool.prompt or DEFAULT_SECURE_PROMPT
    return prompt[:MAX_PROMPT_CHARS]


def _incomplete(entry: SecureDigits) -> str:
    """What the model reads of an entry that was not complete (never its digits)."""
    if entry.ended_by == "closed":
        return "The entry did not finish; nothing was sent."
    if entry.count == 0:
        return "The caller entered no digits before the time ran out; nothing was sent."
    how = "the time ran out" if entry.ended_by == "timeout" else "the entry ended"
    return (
        f"The caller's entry was not complete ({entry.count} digits when {how}); nothing was sent."
    )
