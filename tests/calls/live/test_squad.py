"""The handoff tool on the call's side: offered with the member's destinations, refused to the
model (a tool error it can speak about, nothing carried out) outside them or past the call's
bound, allowed ones counted and the transition chosen."""

from __future__ import annotations

import json

import pytest

from voicedock.calls.live.squad import SquadCall, SquadTools, handoff_spec
from voicedock.domain.assistant_config import AssistantConfig
from voicedock.domain.squads import CallMember, CallSquad, Destination
from voicedock.pipeline.dialogue.events import HandedOver
from voicedock.pipeline.frames import ToolCall
from voicedock.pipeline.tools import ToolResult

pytestmark = pytest.mark.unit

SQUAD = CallSquad(
    members=[
        CallMember(
            name="receptionist",
            destinations=[
                Destination(member="billing", description="Invoices.", message="Billing here."),
                Destination(member="german", description="A German speaker."),
            ],
        ),
        CallMember(
            name="billing",
            destinations=[Destination(member="receptionist", description="Anything else.")],
        ),
        CallMember(name="german", config=AssistantConfig(first_message="Guten Tag.")),
    ],
    max_handoffs=2,
)


def _handoff(destination: object, n: int = 1) -> ToolCall:
    return ToolCall(f"call_{n}", "handoff", json.dumps({"destination": destination}))


class _Tools:
    async def run(self, call: ToolCall) -> ToolResult:
        return ToolResult(f"ran {call.name}")


def test_the_tool_offers_the_members_destinations_and_when() -> None:
    spec = handoff_spec(SQUAD.members[0])
    assert spec is not None
    destination = spec.parameters["properties"]["destination"]  # type: ignore[index]
    assert destination["enum"] == ["billing", "german"]  # type: ignore[index]
    assert "- billing: Invoices." in spec.description
    assert handoff_spec(SQUAD.members[2]) is None  # hands the call over to no one


async def test_a_handoff_outside_the_destinations_is_refused_to_the_model() -> None:
    squad = SquadCall(SQUAD)
    tools = SquadTools(squad, _Tools())
    for destination in ("receptionist", "nobody", 5):
        result = await tools.run(_handoff(destination))
        assert result.error
        assert result.hand_over_to is None
        assert "must be one of: billing, german" in result.content
    assert squad.handoffs == []
    assert (await tools.run(ToolCall("x", "lookup", "{}"))).content == "ran lookup"


async def test_handoffs_past_the_calls_bound_are_refused() -> None:
    squad = SquadCall(SQUAD)
    tools = SquadTools(squad, None)
    first = await tools.run(_handoff("billing"))
    assert (first.hand_over_to, first.end_turn, first.error) == ("billing", True, False)
    assert squad.transition("billing") == "Billing here."  # the destination's message
    squad.moved("billing")
    back = await tools.run(_handoff("receptionist"))
    assert back.hand_over_to == "receptionist"
    assert squad.transition("receptionist") is None  # no message, no first message
    squad.moved("receptionist")
    third = await tools.run(_handoff("german"))
    assert third.error
    assert third.hand_over_to is None
    assert "2 times already" in third.content
    assert squad.handoffs == [
        HandedOver("receptionist", "billing"),
        HandedOver("billing", "receptionist"),
    ]
    assert squad.speaking == "receptionist"
    assert squad.transition("german") == "Guten Tag."  # its own first message
