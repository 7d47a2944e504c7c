"""Conversation flows: an assistant's fixed script as a graph of nodes (docs/flows.md).

The model runs inside a node (its ``prompt`` beside the assistant's own instructions) and
calls ``next_step`` with the node's ``extract`` fields; the flow decides the next node: one
``next``, the first of its ``branches`` whose condition the fields meet, the model's pick
among ``choices``, or none (``end``: the call ends after the node's ``say``; else the node is
the last and the conversation goes on in it). What no type states (the graph: every target a
node, every node reachable, a condition only on a field surely extracted on the way) is
``calls/assistants/flows.py``'s check; running it is ``pipeline/dialogue/flow_run.py``'s.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Literal, get_args

import msgspec
from msgspec import UNSET, Meta, UnsetType

from voicedock.validation import WHITESPACE

FLOW_NODES_MAX = 30
FLOW_PROMPT_MAX = 4_000
FLOW_SAY_MAX = 1_000
FLOW_FIELDS_MAX = 10  # a node's extract
FLOW_WAYS_MAX = 10  # a node's branches, or its choices
FLOW_ENUM_MAX = 20
FLOW_TEXT_MAX = 500  # a field's or a choice's description, an enum's value, a string's value
FLOW_NAME_PATTERN = r"^[a-z0-9_]{1,40}$"
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # a tool's name, as an assistant's tools name it
FLOW_TOOLS_MAX = 20  # tools a node names
NEXT_STEP = "next_step"  # the tool the model moves on with

FieldType = Literal["string", "integer", "number", "boolean", "date"]
FIELD_TYPES: tuple[str, ...] = get_args(FieldType)
Name = Annotated[str, Meta(pattern=FLOW_NAME_PATTERN, description="1-40 of a-z, 0-9 and _.")]
Text = Annotated[str, Meta(min_length=1, max_length=FLOW_TEXT_MAX, pattern=f"[^{WHITESPACE}]")]
FieldValue = str | int | float | bool  # an extracted field's value (a date: "YYYY-MM-DD")


class _Part(
    msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True, omit_defaults=True
):
    """A part of a flow: any other key is refused."""


class FlowField(_Part, kw_only=True, frozen=True):
    """A field the model extracts in a node (a parameter of its ``next_step``, required)."""

    name: Name
    type: Annotated[FieldType, Meta(description='A date is "YYYY-MM-DD".')]
    description: Text | UnsetType = UNSET
    enum: (
        Annotated[
            list[Annotated[str, Meta(min_length=1, max_length=FLOW_TEXT_MAX)]],
            Meta(
                min_length=1,
                max_length=FLOW_ENUM_MAX,
                description="The values a string field may take.",
            ),
        ]
        | UnsetType
    ) = UNSET


class Branch(_Part, kw_only=True, frozen=True):
    """One of a node's ``branches``: the node it goes to when ``field`` meets its one condition
    (``equals``; a date's ``before``/``after``; a number's ``below``/``above``); without a
    field, the else, last."""

    field: Name | UnsetType = UNSET
    equals: FieldValue | UnsetType = UNSET
    before: datetime.date | UnsetType = UNSET
    after: datetime.date | UnsetType = UNSET
    below: float | UnsetType = UNSET
    above: float | UnsetType = UNSET
    next: Name


class Choice(_Part, kw_only=True, frozen=True):
    """One of a node's ``choices``: a node the model may go on to, and when."""

    next: Name
    description: Text


class FlowNode(_Part, kw_only=True, frozen=True):
    name: Name
    prompt: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=FLOW_PROMPT_MAX,
                description="The node's instructions, given to the model with the "
                "assistant's system prompt while the call is in this node.",
            ),
        ]
        | UnsetType
    ) = UNSET
    say: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=FLOW_SAY_MAX,
                description="Said verbatim as the call enters the node.",
            ),
        ]
        | UnsetType
    ) = UNSET
    extract: Annotated[list[FlowField], Meta(max_length=FLOW_FIELDS_MAX)] | UnsetType = UNSET
    next: Name | UnsetType = UNSET
    branches: Annotated[list[Branch], Meta(min_length=1, max_length=FLOW_WAYS_MAX)] | UnsetType = (
        UNSET
    )
    choices: Annotated[list[Choice], Meta(min_length=1, max_length=FLOW_WAYS_MAX)] | UnsetType = (
        UNSET
    )
    end: Annotated[bool, Meta(description="The call ends after the node's say.")] = False
    tools: (
        Annotated[
            list[Annotated[str, Meta(pattern=TOOL_NAME_PATTERN)]],
            Meta(
                max_length=FLOW_TOOLS_MAX,
                description="The assistant's tools the model is offered in this node, by name "
                "(none named: all of them; [] none); next_step besides.",
            ),
        ]
        | UnsetType
    ) = UNSET

    def offers(self, tool: str) -> bool:
        """Whether the model may use the assistant's tool ``tool`` in this node."""
        return isinstance(self.tools, UnsetType) or tool in self.tools

    def targets(self) -> list[str]:
        """The nodes this one may go on to."""
        if not isinstance(self.next, UnsetType):
            return [self.next]
        if not isinstance(self.branches, UnsetType):
            return [branch.next for branch in self.branches]
        if not isinstance(self.choices, UnsetType):
            return [choice.next for choice in self.choices]
        return []

    @property
    def fields(self) -> list[FlowField]:
        return [] if isinstance(self.extract, UnsetType) else self.extract


class Flow(_Part, kw_only=True, frozen=True):
    """``flow``: a fixed script as a graph of nodes, from ``start``. docs/flows.md."""

    start: Name
    nodes: Annotated[list[FlowNode], Meta(min_length=1, max_length=FLOW_NODES_MAX)]

    def node(self, name: str) -> FlowNode:
        return next(node for node in self.nodes if node.name == name)


class FlowProgress(msgspec.Struct, kw_only=True, frozen=True):
    """Where a call's flow is: its node, the nodes it went through (the node included) and
    the fields extracted so far."""

    node: str
    path: list[str]
    fields: dict[str, FieldValue] = msgspec.field(default_factory=dict)


def branch_matches(branch: Branch, fields: dict[str, FieldValue]) -> bool:
    """Whether ``fields`` meet ``branch``'s condition (the else always does)."""
    if isinstance(branch.field, UnsetType):
        return True
    value = fields.get(branch.field)
    if value is None:
        return False
    if not isinstance(branch.equals, UnsetType):
        return value == branch.equals
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        day = datetime.date.fromisoformat(value)
        if not isinstance(branch.before, UnsetType):
            return day < branch.before
        return not isinstance(branch.after, UnsetType) and day > branch.after
    if not isinstance(branch.below, UnsetType):
        return value < branch.below
    return not isinstance(branch.above, UnsetType) and value > branch.above
