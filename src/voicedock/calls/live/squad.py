"""A call placed with a squad, on the call's side: the ``handoff`` tool its members' models
are offered, and the handoffs it carries out.

Each member whose squad lets it hand the call over is offered ``handoff`` (``handoff_spec``),
its ``destination`` one of the members it may hand the call to, each described as the squad
says when. ``SquadTools`` carries a member's tools out: ``handoff`` itself, the member's other
tools by its own executor. A handoff to a member outside the destinations, or past the call's
bound (``CallSquad.max_handoffs``, the operator's ``[calls] max_handoffs``), is refused to the
model as a tool error it can speak about, never carried out; an allowed one ends the member's
turn (``ToolResult.hand_over_to``) and the dialogue (``pipeline/dialogue/squad_dialogue.py``) goes
on with the member named, whose first words are the destination's ``message`` (else its own
first message). ``SquadCall`` keeps who speaks now and the handoffs made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from voicedock.calls.live.providers import SpeechProviders
from voicedock.domain.assistant_config import set_or
from voicedock.domain.squads import OPERATOR_HANDOFF, CallMember, CallSquad
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.events import HandedOver
from voicedock.pipeline.frames import ToolCall
from voicedock.pipeline.tools import (
    HANDOFF,
    SpeakingTools,
    ToolExecutor,
    ToolResult,
    ToolSpec,
    parse_arguments,
    run_tool,
)

HANDOFF_DESCRIPTION = (
    "Hand the call over to another assistant of the team, who goes on with the caller where "
    "you are; say nothing after it. Hand over only as each destination says:"
)


@dataclass(slots=True)
class SquadCall:
    """One call's squad: who speaks now, and the handoffs made so far."""

    squad: CallSquad
    speaking: str = ""
    handoffs: list[HandedOver] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.speaking:
            self.speaking = self.squad.members[0].name

    @property
    def member(self) -> CallMember:
        member = self.squad.member(self.speaking)
        assert member is not None  # only a member of the squad is handed the call
        return member

    def transition(self, to: str) -> str | None:
        """What ``to`` says first when the member speaking hands the call over to it: the
        destination's message, else its own first message."""
        said = next((d.message for d in self.member.destinations if d.member == to), None)
        member = self.squad.member(to)
        return said or (None if member is None else set_or(member.config.first_message, None))

    def hand_over(self, call: ToolCall) -> ToolResult:
        """The model's ``handoff``: refused (a tool error) or allowed (the member to go on
        with, for the dialogue); an allowed one is counted."""
        try:
            arguments = parse_arguments(call)
        except ValueError:
            return ToolResult("The arguments were not a JSON object.", error=True)
        to = arguments.get("destination")
        allowed = [d.member for d in self.member.destinations]
        if not isinstance(to, str) or to not in allowed or self.squad.member(to) is None:
            names = ", ".join(allowed) or "none"
            return ToolResult(
                f"You cannot hand the call over to {to!r}: the destination must be one of: "
                f"{names}. Go on helping the caller yourself.",
                error=True,
            )
        if len(self.handoffs) >= self.squad.max_handoffs:
            return ToolResult(
                f"The call was handed over {len(self.handoffs)} times already, the most it may "
                "be. Do not hand it over again; go on helping the caller yourself.",
                error=True,
            )
        reason = arguments.get("reason")
        self.handoffs.append(
            HandedOver(self.speaking, to, reason if isinstance(reason, str) else None)
        )
        return ToolResult(f"The call is handed over to {to}.", end_turn=True, hand_over_to=to)

    def asked(self, to: str) -> None:
        """An operator handed the call over to ``to`` (a member of the squad): counted, never
        refused by the speaking member's destinations or the model's bound."""
        self.handoffs.append(HandedOver(self.speaking, to, OPERATOR_HANDOFF))

    def moved(self, to: str) -> None:
        """The member ``to`` speaks now."""
        self.speaking = to


def handoff_spec(member: CallMember) -> ToolSpec | None:
    """The ``handoff`` tool as ``member``'s model is offered it (None: it may hand the call
    over to no one)."""
    if not member.destinations:
        return None
    when = "\n".join(f"- {d.member}: {d.description}" for d in member.destinations)
    return ToolSpec(
        name=HANDOFF,
        description=f"{HANDOFF_DESCRIPTION}\n{when}",
        parameters={
            "type": "object",
            "properties": {
                "destination": {
                    "type": "string",
                    "enum": [d.member for d in member.destinations],
                    "description": "The assistant to hand the call over to.",
                },
                "reason": {"type": "string", "description": "Why, in a few words."},
            },
            "required": ["destination"],
        },
    )


class SquadTools:
    """A member's tools: ``handoff`` (``SquadCall``), the others by ``tools``."""

    def __init__(self, squad: SquadCall, tools: ToolExecutor | None) -> None:
        self._squad = squad
        self._tools = tools

    def spoken(self, call: ToolCall) -> str | None:
        tools: object = self._tools
        return tools.spoken(call) if isinstance(tools, SpeakingTools) else None

    async def run(self, call: ToolCall) -> ToolResult:
        if call.name == HANDOFF:
            return self._squad.hand_over(call)
        return await run_tool(self._tools, call)


@dataclass(frozen=True, slots=True)
class SquadMembers:
    """What a live call needs of its squad: who speaks and the handoffs (``call``), each
    member's speech providers, made as the call's own are (``providers``: the conversation
    closes them) and its tools (``tools``: without ``handoff``). Each handoff made is told
    on the call's events (``HandedOver``)."""

    call: SquadCall
    providers: Callable[[CallMember], Awaitable[SpeechProviders]]
    tools: Callable[[CallMember], ToolExecutor | None]

    def offered(self, config: ConversationConfig, member: CallMember) -> ConversationConfig:
        """``config`` as ``member``'s dialogue runs it: its messages named after it, the
        ``handoff`` tool among its tools when it may hand the call over."""
        spec = handoff_spec(member)
        tools = config.tools if spec is None else (*config.tools, spec)
        return dataclasses.replace(config, tools=tools, member=member.name)

    def executor(self, member: CallMember) -> SquadTools:
        return SquadTools(self.call, self.tools(member))
