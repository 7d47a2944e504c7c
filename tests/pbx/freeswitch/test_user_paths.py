"""User paths on FreeSWITCH: REST with the engine's own ids and configs, checked at the far end.

Each test does what a user does (``POST /calls/outbound`` in reference mode, ``GET /calls``,
``POST /calls/{id}/control``, or a caller dialling one of our numbers) and checks what the
user would check at the other end: what FreeSWITCH was asked to do and what the party got.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fakes.world import ACME_NUMBERS, DESTINATION, SUPPORT_ID
from pbx.freeswitch.fake_audio_stream import GiveUp
from pbx.freeswitch.live_service import (
    TERMINAL,
    UserPathService,
    running_freeswitch_service,
    until,
)
from voicedock.domain.ids import is_call_id
from voicedock.pbx.freeswitch.media.hub import STREAM_ATTEMPTS

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]


@pytest.fixture
async def freeswitch_service(tmp_path: Path) -> AsyncIterator[UserPathService]:
    async with running_freeswitch_service(tmp_path) as running:
        yield running


OUTBOUND_ID = re.compile(r"call-outbound-[A-Za-z0-9]{16}")
CALLER = "+31623731537"  # the seed's inbound example: call-_+31623731537_XqaQxRRgAzYc


async def place(live: UserPathService, destination: str = DESTINATION) -> str:
    """Reference mode, the seed's body shape; the contract answers 200 with the call id."""
    status, body = await live.post(
        "/calls/outbound", {"destination": destination, "assistant_id": SUPPORT_ID}
    )
    assert status == 200, body
    assert body["success"] is True
    assert body["status"] == "dialing"
    call_id = str(body["call_id"])
    assert OUTBOUND_ID.fullmatch(call_id)
    return call_id


async def test_outbound_call_is_placed_answered_and_ended_through_rest(
    freeswitch_service: UserPathService,
) -> None:
    live, far = freeswitch_service, freeswitch_service.far_end
    far.will_ring(DESTINATION)
    call_id = await place(live)

    originate = far.originate_of(call_id)  # the call id travels on the channel
    channel = originate["origination_uuid"]
    assert channel == str(uuid.UUID(channel)) != call_id  # our own uuid4 for the leg
    assert originate["voicedock_call_id"] == call_id
    assert originate["origination_caller_id_number"] == ACME_NUMBERS[0]
    assert any(
        c.startswith("bgapi originate {")
        and c.endswith(f"sofia/gateway/carrier-ep/{DESTINATION} &park()")
        for c in far.commands
    )

    await far.answer(call_id)
    answered = await live.wait_status(call_id, ("in-progress", *TERMINAL))
    assert answered["status"] == "in-progress"

    status, body = await live.post(f"/calls/{call_id}/control", {"type": "end-call"})
    assert status == 200, body
    ended = await live.wait_status(call_id, TERMINAL)
    assert ended["status"] == "ended"
    assert far.killed(channel)  # uuid_kill of that uuid
    assert not far.exists(channel)  # and the party's line is free


async def test_the_far_end_hanging_up_ends_the_call(freeswitch_service: UserPathService) -> None:
    live, far = freeswitch_service, freeswitch_service.far_end
    call_id = await place(live)  # answers at once
    await live.wait_status(call_id, ("in-progress",))
    far.hang_up(far.channel_of(call_id))
    ended = await live.wait_status(call_id, TERMINAL)
    assert ended["status"] == "ended"
    assert not far.killed(far.channel_of(call_id))  # nothing left for voicedock to hang up


@pytest.mark.parametrize("give_up", [GiveUp.UNSEEN, GiveUp.DROPPED])
async def test_a_stream_freeswitch_gave_up_on_is_started_again_and_the_callee_is_greeted(
    freeswitch_service: UserPathService, give_up: GiveUp
) -> None:
    """mod_audio_stream gives up on a websocket voicedock answers later than 1 s (its event
    loop held up on a loaded machine): the stream is started again, and the callee hears the
    greeting instead of silence and a media-error hang-up."""
    live, far = freeswitch_service, freeswitch_service.far_end
    far.fake.stream_give_ups = [give_up]  # the first stream of the call only
    status, body = await live.post(
        "/calls/outbound",
        {
            "destination": DESTINATION,
            "assistant_id": SUPPORT_ID,
            "assistant_override": {"first_message": "Hello, this is the dental clinic."},
        },
    )
    assert status == 200, body
    call_id = str(body["call_id"])
    channel = far.channel_of(call_id)

    async def greeted() -> bool:
        call = await live.call(call_id)
        assert call["status"] not in TERMINAL, call
        return any(
            e["type"] == "transcript"
            and e["data"]["role"] == "assistant"
            and not e["data"]["interrupted"]
            for e in call["events"]
        )

    await until(greeted, within=10)
    assert far.heard(channel)[0], "the callee heard nothing"
    starts = [c for c in far.commands if c.startswith(f"api uuid_audio_stream {channel} start ")]
    assert len(starts) == 2  # the stream FreeSWITCH gave up on, then the one that carried it
    status, body = await live.post(f"/calls/{call_id}/control", {"type": "end-call"})
    assert status == 200, body
    ended = await live.wait_status(call_id, TERMINAL)
    assert (ended["status"], ended["end_reason"]) == ("ended", "api-end-call"), ended


async def test_a_stream_freeswitch_keeps_giving_up_on_ends_the_call_media_error(
    freeswitch_service: UserPathService,
) -> None:
    """Started ``STREAM_ATTEMPTS`` times and given up on each time, the call is not left in
    silence: it ends ``media-error`` and its leg is hung up."""
    live, far = freeswitch_service, freeswitch_service.far_end
    far.fake.stream_give_ups = [GiveUp.UNSEEN] * STREAM_ATTEMPTS
    call_id = await place(live)
    channel = far.channel_of(call_id)
    ended = await live.wait_status(call_id, TERMINAL, within=10)
    assert (ended["status"], ended["end_reason"]) == ("ended", "media-error"), ended
    starts = [c for c in far.commands if c.startswith(f"api uuid_audio_stream {channel} start ")]
    assert len(starts) == STREAM_ATTEMPTS
    assert far.killed(channel)
    assert not far.exists(channel)


async def test_inbound_call_from_an_e164_caller_is_answered_and_listed(
    freeswitch_service: UserPathService,
) -> None:
    live, far = freeswitch_service, freeswitch_service.far_end
    channel = far.call_in(ACME_NUMBERS[0], caller=CALLER)

    async def listed() -> list[dict[str, object]]:
        status, body = await live.get("/calls")
        assert status == 200, body
        return [c for c in body["calls"] if c["caller_phone"] == CALLER]

    async def in_progress() -> bool:
        return any(c["status"] == "in-progress" for c in await listed())

    await until(in_progress)
    (call,) = await listed()
    call_id = str(call["id"])
    assert re.fullmatch(r"call-_\+31623731537_[A-Za-z0-9]{12}", call_id)
    assert is_call_id(call_id)
    assert call["assistant_phone"] == ACME_NUMBERS[0]
    assert f"api uuid_answer {channel}" in far.commands  # FreeSWITCH answered the caller
    assert f"api uuid_setvar {channel} voicedock_call_id {call_id}" in far.commands
    assert not far.killed(channel)
    await until(lambda: channel in far.fake.streams_by_uuid)  # the assistant's media is on
    metadata = far.fake.streams_by_uuid[channel].metadata or ""
    assert CALLER not in metadata  # FreeSWITCH logs it: the caller's number stays masked
    assert call_id[-12:] in metadata

    far.hang_up(channel)  # the caller hangs up
    ended = await live.wait_status(call_id, TERMINAL)
    assert ended["status"] == "ended"


async def test_end_call_while_ringing_kills_the_ringing_leg(
    freeswitch_service: UserPathService,
) -> None:
    live, far = freeswitch_service, freeswitch_service.far_end
    far.will_ring(DESTINATION)
    call_id = await place(live)
    channel = far.channel_of(call_id)
    await until(lambda: far.fake.rings(channel))  # the party's phone rings
    status, body = await live.post(f"/calls/{call_id}/control", {"type": "end-call"})
    assert status == 200, body
    await until(lambda: far.killed(channel))  # uuid_kill of the ringing leg
    assert not far.exists(channel)
    ended = await live.wait_status(call_id, TERMINAL)
    assert ended["status"] in TERMINAL


def documented_warm_transfer() -> dict[str, object]:
    """The request body of ``docs/transfers.md`` (its first JSON block), as a user copies it."""
    text = (Path(__file__).parents[3] / "docs" / "transfers.md").read_text()
    block = re.search(r"```json POST /calls/\{id\}/control\n(.*?)```", text, re.DOTALL)
    assert block is not None
    body = json.loads(block.group(1))
    assert isinstance(body, dict)
    assert body["destination"] == "sales"
    assert body["mode"] == "warm"
    return body


async def test_documented_warm_transfer_to_an_internal_target(
    freeswitch_service: UserPathService,
) -> None:
    live, far = freeswitch_service, freeswitch_service.far_end
    far.fake.agent_presses["sales"] = "1"  # the agent at "sales" takes the call
    call_id = await place(live)  # answers at once
    await live.wait_status(call_id, ("in-progress",))
    caller = far.channel_of(call_id)

    status, body = await live.post(f"/calls/{call_id}/control", documented_warm_transfer())
    assert status == 200, body
    assert body["success"] is True

    ended = await live.wait_status(call_id, TERMINAL, within=20)
    assert (ended["status"], ended["end_reason"]) == ("ended", "transferred"), ended
    assert ended["transferred_to"] == "sales"
    assert ended["transferred_at"] is not None
    # The agent leg went through the dialplan's "sales" extension in the transfer context ...
    (originate,) = [c for c in far.commands if "}loopback/" in c]
    assert originate.startswith("bgapi originate {origination_uuid=")
    assert originate.endswith("}loopback/sales/voicedock_transfer/XML &park()")
    agent = originate.removeprefix("bgapi originate {origination_uuid=").split(",", 1)[0]
    assert agent == str(uuid.UUID(agent))
    # ... the agent pressed 1 on it, and the caller was bridged to that leg.
    assert f"api uuid_bridge {caller} {agent}" in far.commands
    assert not far.killed(agent)
    assert not far.killed(caller)
    assert far.exists(caller)  # the caller now talks to the agent, outside voicedock
    far.hang_up(caller)
