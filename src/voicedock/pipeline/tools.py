"""Tools the model may call during a call: what it is offered, and who carries a call out.

    ToolSpec            name, description and JSON-Schema parameters, as offered to the model
    ToolResult          what a tool answered (text the model reads), and whether the turn ends
    ToolExecutor        carries out one ``ToolCall`` (a webhook, a built-in): the call layer's

The turn engine never runs a tool itself: it hands each ``ToolCall`` of the model to the
executor, appends the result as a ``tool`` message and lets the model go on. An executor never
raises for a tool's own failure (a timeout, an error answer): that is a result the model can
speak about.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypedDict, runtime_checkable

from voicedock.domain.json import JsonObject, JsonValue, json_object
from voicedock.pipeline.frames import ToolCall, TranscriptEntry

log = logging.getLogger("voicedock.pipeline")

# Tools carried out by voicedock itself (the rest go to the organization's server).
END_CALL = "end_call"
TRANSFER_CALL = "transfer_call"
SEND_DTMF = "send_dtmf"
COLLECT_SECURE_DIGITS = "collect_secure_digits"
NAVIGATE_MENU = "navigate_menu"  # keys for a phone menu the call reached (calls/live/phone_menu.py)
HANDOFF = "handoff"  # a squad's member hands the call over to another (calls/live/squad.py)


class OpenAiTool(TypedDict):
    """A ``tools[]`` entry of an OpenAI-compatible chat request."""

    type: str
    function: JsonObject  # name, parameters (a JSON Schema), description


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str = ""
    parameters: Mapping[str, JsonValue] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )

    def openai_tool(self) -> OpenAiTool:
        """The ``tools[]`` entry of an OpenAI-compatible chat request."""
        function: JsonObject = {"name": self.name, "parameters": dict(self.parameters)}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}


@dataclass(frozen=True, slots=True)
class ToolResult:
    """``content`` is what the model reads; ``end_turn``: the model does not go on after it
    (the call is ending or leaving voicedock); ``error``: the tool failed (``content`` says
    how, for the model); ``hand_over_to``: the squad's member the call goes on with (the
    dialogue ends for it, ``HANDED_OVER``, once what is being said was said)."""

    content: str
    end_turn: bool = False
    error: bool = False
    hand_over_to: str | None = None


class ToolExecutor(Protocol):
    async def run(self, call: ToolCall) -> ToolResult:
        """Carry out ``call``; a failure of the tool is a result, never an exception."""
        ...


@runtime_checkable
class SpeakingTools(Protocol):
    """An executor some of whose tools speak to the caller as they start (a prompt)."""

    def spoken(self, call: ToolCall) -> str | None:
        """What the caller hears as ``call`` starts, instead of the tool filler (None: the
        tool says nothing of its own)."""
        ...


@runtime_checkable
class FoundTools(Protocol):
    """An executor with tools found as the call started (an MCP server's), offered to the
    model besides those of the assistant's configuration."""

    def found(self) -> tuple[ToolSpec, ...]: ...


class TurnKnowledge(Protocol):
    """The assistant's knowledge bases, searched with each turn's words."""

    async def for_turn(self, words: str) -> str | None:
        """What the search of ``words`` found, as the text of a system message for this
        turn's request (None: nothing found)."""
        ...


@runtime_checkable
class KnowingTools(Protocol):
    """An executor whose assistant may search its knowledge bases with each turn's words."""

    def turn_knowledge(self) -> TurnKnowledge | None:
        """What searches each turn's words (None: no search on each turn)."""
        ...


def with_found(offered: tuple[ToolSpec, ...], executor: object) -> tuple[ToolSpec, ...]:
    """``offered`` and the tools ``executor`` found (``FoundTools``), if any."""
    found = executor.found() if isinstance(executor, FoundTools) else ()
    return (*offered, *found) if found else offered


def parse_arguments(call: ToolCall) -> JsonObject:
    """The call's arguments as an object (``{}`` when the model sent nothing); ``ValueError``
    when they are not a JSON object."""
    if not call.arguments.strip():
        return {}
    value = json_object(json.loads(call.arguments))
    if value is None:
        raise ValueError("tool arguments are not a JSON object")
    return value


def result_text(value: object) -> str:
    """A tool's answer as the text of a ``tool`` message (JSON unless it is text already)."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


async def run_tool(executor: ToolExecutor | None, call: ToolCall) -> ToolResult:
    """``call`` carried out by ``executor``; every failure (the executor's own bugs too, or no
    executor) is a result the model reads."""
    if executor is None:
        return ToolResult(f"The tool {call.name} is not available.", error=True)
    try:
        return await executor.run(call)
    except Exception:
        log.exception("tool %s failed", call.name)
        return ToolResult(f"The tool {call.name} failed.", error=True)


def calls_entry(calls: Sequence[ToolCall], at: float) -> TranscriptEntry:
    """The transcript message of the model's tool calls (content: a JSON list)."""
    shown = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]
    return TranscriptEntry("tool_calls", _compact(shown), at, at)


def result_entry(call: ToolCall, result: ToolResult, at: float) -> TranscriptEntry:
    """The transcript message of one tool's result (content: JSON)."""
    shown = {"tool_call_id": call.id, "name": call.name, "result": result.content}
    return TranscriptEntry("tool", _compact(shown), at, at)


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))
