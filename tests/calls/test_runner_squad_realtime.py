"""A squad's speech-to-speech member hands the call over: the model's ``handoff`` function
call is answered (``function_call_output``), what was being said is said, and the call goes on
with the member named on a session of its own, under its instructions, told the call so far;
the transition is its first words, the handoff a call event, each message named after its
member."""

from __future__ import annotations

import asyncio
import json

import pytest

from calls.test_runner_realtime import (
    KEY,
    World,
    caller_speech,
    until,
    world,
)
from fakes.calls import call_finished, place_outbound
from fakes.requests import outbound_request
from fakes.world import ACME, DESTINATION, org_id
from voicedock.calls.control import EndCall
from voicedock.domain.records import Squad
from voicedock.domain.squads import Destination, Member
from voicedock.pipeline.dialogue.carried import CARRIED_NOTE

pytestmark = pytest.mark.unit

__all__ = ["world"]  # the fixture

ACME_ID = org_id(ACME)


def _member(world: World, prompt: str, first: str | None = None) -> dict[str, object]:
    config: dict[str, object] = {
        "provider": "xai_realtime",
        "system_prompt": prompt,
        "llm_config": {"url": world.realtime_url, "api_key": KEY},
    }
    return config if first is None else {**config, "first_message": first}


async def test_a_speech_to_speech_member_hands_the_call_over(world: World) -> None:
    world.script.turn_after_frames = 10
    world.script.function_call = ("handoff", {"destination": "billing", "reason": "invoice"})
    squad = Squad(
        id="squad_1",
        organization_id=ACME_ID,
        name="Desk",
        members=[
            Member(
                name="desk",
                assistant=_member(world, "You are the front desk.", "Hello, front desk."),
                destinations=[
                    Destination(member="billing", description="Invoices.", message="Billing here.")
                ],
            ),
            Member(name="billing", assistant=_member(world, "You handle billing.")),
        ],
    )
    async with world.store.transaction() as tx:
        await tx.insert_squad(squad)
    request = outbound_request({"destination": DESTINATION, "squad_id": "squad_1"})
    result = await place_outbound(world.engine, ACME_ID, request)
    call_id = str(result.body["call_id"])
    await world.pbx.answer(call_id)
    await until(lambda: ("assistant", "Hello, front desk.") in world.observer.seen)
    channel = world.fake.channel()
    for frame in caller_speech(10):
        await channel.ws.send_bytes(frame)
        await asyncio.sleep(0.02)
    await until(lambda: ("assistant", "Billing here.") in world.observer.seen)

    # Each member its own session: the desk offered the handoff, billing not (no destinations).
    first, second = world.sent("session.update")
    assert "front desk" in first["session"]["instructions"]
    assert [t["name"] for t in first["session"]["tools"]] == ["handoff"]
    assert "billing" in second["session"]["instructions"]
    assert "front desk" not in second["session"]["instructions"]
    assert second["session"].get("tools", []) == []
    outputs = [e["item"] for e in world.sent("conversation.item.create") if "call_id" in e["item"]]
    assert outputs == [
        {
            "type": "function_call_output",
            "call_id": "fc_1",
            "output": "The call is handed over to billing.",
        }
    ]
    # Billing's session was told the call so far before its first words.
    told = [json.dumps(e) for e in world.sent("conversation.item.create")]
    carried = [t for t in told if CARRIED_NOTE in t]
    assert len(carried) == 1
    assert "Hello, front desk." in carried[0]

    await world.engine.control.run(ACME_ID, call_id, EndCall(None))
    async with asyncio.timeout(10):
        await call_finished(world.runner, call_id)
    events = await world.store.list_events(call_id)
    handoffs = [e.data for e in events if e.type == "handoff"]
    assert handoffs == [{"from": "desk", "to": "billing", "reason": "invoice"}]
    said = [(m.role, m.content, m.member) for m in await world.store.list_messages(call_id)]
    assert ("assistant", "Hello, front desk.", "desk") in said
    assert ("assistant", "Billing here.", "billing") in said
