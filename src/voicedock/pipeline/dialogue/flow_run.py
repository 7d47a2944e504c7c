"""A call's flow as it runs on the turn engine (``domain/flows.py`` says what a flow is).

The model is in one node at a time: its instructions are the node's ``prompt`` after the
assistant's own (``instructions``), and it is offered ``next_step`` (``tool``), whose
parameters are the node's extract fields, each required, and, for ``choices``, ``next``
among the nodes named. When the model calls it, ``step`` checks the arguments against the
fields' types (a wrong one is a tool result saying what is wrong, so the model asks again and
the call stays in the node), keeps the fields, picks the next node (``next``, the first of
``branches`` whose condition the fields meet, the model's choice) and moves there: the
model's next request has the new node's instructions and tool, its ``say`` is spoken, and an
``end`` node ends the call after it. Each move is told on the call's events
(``FlowMoved``), for the call's record.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass

from msgspec import UnsetType

from voicedock.domain.flows import (
    FLOW_TEXT_MAX,
    NEXT_STEP,
    FieldValue,
    Flow,
    FlowField,
    FlowNode,
    FlowProgress,
    branch_matches,
)
from voicedock.domain.json import JsonObject, JsonValue
from voicedock.pipeline.dialogue.events import CallEvents, FlowMoved
from voicedock.pipeline.frames import ToolCall
from voicedock.pipeline.tools import ToolResult, ToolSpec, parse_arguments
from voicedock.weak import weak_method

_JSON_TYPES = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "date": "string",
}


@dataclass(frozen=True, slots=True)
class FlowStep:
    """What ``next_step`` did: the model's result, what the caller hears as the call enters
    the next node (None: nothing), and whether the call ends after it."""

    result: ToolResult
    say: str | None = None
    ends: bool = False


class FlowRun:
    def __init__(
        self,
        flow: Flow,
        events: CallEvents | None = None,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        """``redact``: the call's redaction plan, applied to the text fields the record keeps
        (its branches read them as the caller gave them)."""
        self._flow = flow
        self._events = events
        self._redact = redact
        self.node: FlowNode = flow.node(flow.start)
        self.path: list[str] = [flow.start]
        self.fields: dict[str, FieldValue] = {}

    def progress(self) -> FlowProgress:
        """Where the flow is, for the call's record: its text fields redacted as the call's
        transcript is."""
        redact = self._redact
        kept = {
            name: redact(value) if redact is not None and isinstance(value, str) else value
            for name, value in self.fields.items()
        }
        return FlowProgress(node=self.node.name, path=list(self.path), fields=kept)

    def started(self) -> str | None:
        """The flow's start, told on the events; what the start node says (None: nothing)."""
        self._tell()
        return _text(self.node.say)

    def instructions(self) -> str:
        """The node's instructions, after the assistant's own."""
        node = self.node
        lines = [f"You are at step {node.name!r} of this call's script."]
        if not isinstance(node.prompt, UnsetType):
            lines.append(node.prompt)
        if self.tool() is not None:
            wanted = ", ".join(field.name for field in node.fields)
            lines.append(
                f"When this step is done, call {NEXT_STEP}"
                + (
                    f" with {wanted} (ask the caller for what you do not know yet)."
                    if wanted
                    else "."
                )
            )
        return "\n".join(lines)

    def tool(self) -> ToolSpec | None:
        """``next_step`` of the node (None: the node has no way on)."""
        node = self.node
        if not node.targets():
            return None
        properties: JsonObject = {field.name: _schema(field) for field in node.fields}
        required: list[JsonValue] = [field.name for field in node.fields]
        if not isinstance(node.choices, UnsetType):
            properties["next"] = {
                "type": "string",
                "enum": [choice.next for choice in node.choices],
                "description": "The next step: "
                + "; ".join(f"{c.next}: {c.description}" for c in node.choices),
            }
            required.append("next")
        parameters: JsonObject = {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        }
        return ToolSpec(NEXT_STEP, f"Finish the step {node.name!r} and go on.", parameters)

    def step(self, call: ToolCall) -> FlowStep:
        """The model's ``next_step``: the call moves on, or stays with the result saying why."""
        node = self.node
        if not node.targets():
            return _stay("This step has no next step; go on with the caller.")
        try:
            arguments = parse_arguments(call)
        except ValueError:
            return _stay("The arguments must be a JSON object.")
        values, wrong = _checked(node, arguments)
        if wrong:
            return _stay("Not done: " + "; ".join(wrong) + ". Ask the caller and call again.")
        self.fields.update(values)
        target = self._target(node, arguments)
        self.node = self._flow.node(target)
        self.path.append(target)
        self._tell()
        say = _text(self.node.say)
        if self.node.end:
            return FlowStep(ToolResult("The call is ending.", end_turn=True), say, ends=True)
        told = f" The caller was just told: {json.dumps(say)}." if say else ""
        return FlowStep(ToolResult(f"Moved on to step {target!r}.{told}"), say)

    def _target(self, node: FlowNode, arguments: JsonObject) -> str:
        if not isinstance(node.next, UnsetType):
            return node.next
        if not isinstance(node.branches, UnsetType):
            return next(b.next for b in node.branches if branch_matches(b, self.fields))
        return str(arguments["next"])

    def _tell(self) -> None:
        if self._events is not None:
            self._events.emit(FlowMoved(self.progress()))


def _stay(message: str) -> FlowStep:
    return FlowStep(ToolResult(message, error=True))


def _text(value: str | UnsetType) -> str | None:
    return None if isinstance(value, UnsetType) else value


def _schema(field: FlowField) -> JsonObject:
    schema: JsonObject = {"type": _JSON_TYPES[field.type]}
    if field.type == "date":
        schema["format"] = "date"
    description = "" if isinstance(field.description, UnsetType) else field.description
    if field.type == "date":
        description = f"{description} (YYYY-MM-DD)".strip()
    if description:
        schema["description"] = description
    if not isinstance(field.enum, UnsetType):
        schema["enum"] = list(field.enum)
    return schema


def _checked(node: FlowNode, arguments: JsonObject) -> tuple[dict[str, FieldValue], list[str]]:
    """The node's fields in ``arguments``, typed; what is wrong with them (each in words)."""
    values: dict[str, FieldValue] = {}
    wrong: list[str] = []
    known = {field.name for field in node.fields} | (
        {"next"} if not isinstance(node.choices, UnsetType) else set()
    )
    wrong.extend(f"{key} is not a field of this step" for key in arguments if key not in known)
    for field in node.fields:
        if arguments.get(field.name) is None:
            wrong.append(f"{field.name} is missing")
            continue
        value, problem = _typed(field, arguments[field.name])
        if problem is not None:
            wrong.append(f"{field.name} {problem}")
        elif value is not None:
            values[field.name] = value
    if not isinstance(node.choices, UnsetType):
        names = [choice.next for choice in node.choices]
        if arguments.get("next") not in names:
            wrong.append(f"next must be one of {', '.join(names)}")
    return values, wrong


def _typed(field: FlowField, value: JsonValue) -> tuple[FieldValue | None, str | None]:
    """``value`` as ``field``'s type, or what is wrong with it."""
    kind = field.type
    if kind == "boolean":
        return (value, None) if isinstance(value, bool) else (None, "must be true or false")
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value, None
        return None, "must be a whole number"
    if kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value, None
        return None, "must be a number"
    if not isinstance(value, str) or not value.strip() or len(value) > FLOW_TEXT_MAX:
        return None, f"must be a text of 1-{FLOW_TEXT_MAX} characters"
    if kind == "date":
        try:
            return datetime.date.fromisoformat(value).isoformat(), None
        except ValueError:
            return None, "must be a date, YYYY-MM-DD"
    if not isinstance(field.enum, UnsetType) and value not in field.enum:
        return None, f"must be one of {', '.join(field.enum)}"
    return value.strip(), None


class FlowWatch:
    """Where a call's flow is, as its record keeps it: the progress of its last move (told on
    the call's ``events``; None: it has no flow, or it has not started). Held weakly by the
    bus: whoever makes it keeps it, as the call does."""

    def __init__(self, events: CallEvents) -> None:
        self.progress: FlowProgress | None = None
        events.subscribe(FlowMoved, weak_method(self._moved))

    def _moved(self, moved: FlowMoved) -> None:
        self.progress = moved.progress
