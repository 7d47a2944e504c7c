from __future__ import annotations

import asyncio
import dataclasses

import msgspec
import pytest

from fakes.calls import place_outbound
from fakes.memory_store import MemoryStore
from fakes.pbx import FakePbx
from fakes.requests import outbound_request
from fakes.world import (
    ACME,
    ACME_NUMBERS,
    DESTINATION,
    GLOBEX,
    GLOBEX_ASSISTANT_ID,
    GLOBEX_NUMBER,
    SUPPORT_ID,
    number_id,
    org_id,
)
from voicedock.calls.engine import CallEngine
from voicedock.calls.errors import CallNotPlaced
from voicedock.calls.outbound.idempotency import IdempotencyKey
from voicedock.calls.outbound.request import OutboundRequest
from voicedock.domain.records import CallStatus, Squad
from voicedock.domain.squads import Destination, Member
from voicedock.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PbxError,
    PbxUnavailable,
    RateLimited,
    Unprocessable,
)
from voicedock.pbx.base import InboundCall, PbxEventKind

pytestmark = pytest.mark.unit

ACME_ID = org_id(ACME)


def request(**extra: object) -> OutboundRequest:
    return outbound_request({"destination": DESTINATION, "assistant_id": SUPPORT_ID, **extra})


async def place(engine: CallEngine, **extra: object) -> str:
    result = await place_outbound(engine, ACME_ID, request(**extra))
    assert result.status == 200
    call_id = result.body["call_id"]
    assert isinstance(call_id, str)
    return call_id


async def statuses(store: MemoryStore, call_id: str) -> list[str]:
    return [e.data["to"] for e in await store.list_events(call_id) if e.type == "status"]


async def test_outbound_records_then_originates(
    engine: CallEngine, store: MemoryStore, pbx: FakePbx
) -> None:
    result = await place_outbound(engine, ACME_ID, request())
    assert result.body["status"] == "dialing"
    assert result.body["success"] is True
    call_id = result.body["call_id"]
    assert call_id.startswith("call-outbound-")
    assert result.body["room_name"].startswith("outbound-")
    call = await store.get_call(ACME_ID, call_id)
    assert call is not None
    assert call.status is CallStatus.CONNECTING
    assert call.caller_phone == DESTINATION
    assert call.assistant_phone in ACME_NUMBERS
    assert call.agent_name == "Support"
    assert call.business_name == "Acme Corp"
    assert call.first_message == "Hi!"
    (sent,) = pbx.originated
    assert sent.call_id == call_id
    assert sent.destination == DESTINATION
    assert sent.trunk_endpoint == "carrier-ep"
    assert sent.caller_id == call.assistant_phone
    assert await statuses(store, call_id) == ["connecting"]


async def test_full_lifecycle_and_duplicates(
    engine: CallEngine, store: MemoryStore, pbx: FakePbx
) -> None:
    call_id = await place(engine)
    await pbx.answer(call_id)
    await pbx.answer(call_id)  # duplicate
    await pbx.hang_up_remote(call_id)
    await pbx.hang_up_remote(call_id)  # duplicate
    await pbx.answer(call_id)  # out of order after the end
    call = await store.get_call(ACME_ID, call_id)
    assert call is not None
    assert call.status is CallStatus.ENDED
    assert call.end_reason == "remote-hangup"
    assert call.error is None
    assert call.started_at is not None
    assert call.ended_at is not None
    assert call.duration_seconds == 0
    assert await statuses(store, call_id) == ["connecting", "in-progress", "ended"]


@pytest.mark.parametrize(
    ("cause", "tech_cause", "error"),
    [
        (17, 486, "busy"),
        (19, None, "no-answer"),
        (21, 603, "rejected"),
        (1, 404, "invalid-number"),
        (34, 503, "congestion"),
        (18, 408, "unreachable"),
        (None, None, "pbx-error"),
        (16, None, "no-answer"),
    ],
)
async def test_unanswered_hangup_fails_with_cause(
    engine: CallEngine,
    store: MemoryStore,
    pbx: FakePbx,
    cause: int | None,
    tech_cause: int | None,
    error: str,
) -> None:
    call_id = await place(engine)
    await pbx.hang_up_remote(call_id, cause, tech_cause)
    await pbx.answer(call_id)  # a late answer never revives a failed call
    call = await store.get_call(ACME_ID, call_id)
    assert call is not None
    assert call.status is CallStatus.FAILED
    assert call.error == error
    assert call.started_at is None
    assert call.duration_seconds is None
    assert await statuses(store, call_id) == ["connecting", "failed"]


async def test_pbx_restart_fails_every_live_call(
    engine: CallEngine, store: MemoryStore, pbx: FakePbx
) -> None:
    first, second = await place(engine), await place(engine)
    await pbx.answer(first)
    await pbx.emit("", PbxEventKind.PBX_RESTARTED)
    for call_id in (first, second):
        call = await store.get_call(ACME_ID, call_id)
        assert call is not None
        assert call.status is CallStatus.FAILED
        assert call.error == "pbx-restart"


@pytest.mark.parametrize(
    ("exc", "error"), [(PbxUnavailable("down"), "pbx-unavailable"), (PbxError("no"), "pbx-error")]
)
async def test_originate_failure_records_failed_call(
    engine: CallEngine, store: MemoryStore, pbx: FakePbx, exc: PbxError, error: str
) -> None:
    pbx.fail_next_originate = exc
    with pytest.raises(CallNotPlaced) as info:
        await place_outbound(engine, ACME_ID, request())
    assert info.value.status == 503
    call = await store.get_call(ACME_ID, info.value.call_id)
    assert call is not None
    assert call.status is CallStatus.FAILED
    assert call.error == error
    assert info.value.body()["call_id"] == call.id


async def test_unknown_event_call_is_ignored(engine: CallEngine, pbx: FakePbx) -> None:
    await pbx.answer("call-outbound-nope")  # must not raise into the adapter


async def test_reconcile_settles_calls_the_pbx_lost(
    engine: CallEngine, store: MemoryStore, pbx: FakePbx
) -> None:
    answered, ringing = await place(engine), await place(engine)
    await pbx.answer(answered)
    pbx.live.discard(answered)
    assert await engine.pbx_events.reconcile() == 1
    pbx.live.discard(ringing)
    assert await engine.pbx_events.reconcile() == 1
    assert await engine.pbx_events.reconcile() == 0
    ended = await store.get_call(None, answered)
    failed = await store.get_call(None, ringing)
    assert ended is not None
    assert ended.status is CallStatus.ENDED
    assert failed is not None
    assert failed.status is CallStatus.FAILED


async def test_lru_number_selection_and_limit(engine: CallEngine, store: MemoryStore) -> None:
    first = await store.get_call(ACME_ID, await place(engine))
    second = await store.get_call(ACME_ID, await place(engine))
    assert first is not None
    assert second is not None
    assert {first.assistant_phone, second.assistant_phone} == set(ACME_NUMBERS)
    with pytest.raises(RateLimited):  # both numbers at max_concurrent_calls=1
        await place(engine)


async def test_number_id_of_other_org_is_404(engine: CallEngine, pbx: FakePbx) -> None:
    with pytest.raises(NotFound):
        await place(engine, number_id=number_id(GLOBEX_NUMBER))
    assert pbx.originated == []


async def test_specific_number_is_used(engine: CallEngine, store: MemoryStore) -> None:
    call_id = await place(engine, number_id=number_id(ACME_NUMBERS[1]))
    call = await store.get_call(ACME_ID, call_id)
    assert call is not None
    assert call.assistant_phone == ACME_NUMBERS[1]


async def test_assistant_resolution_errors(engine: CallEngine, store: MemoryStore) -> None:
    with pytest.raises(NotFound):
        await place(engine, assistant_id="missing-assistant")
    with pytest.raises(NotFound):  # another organization's assistant
        await place(engine, assistant_id=GLOBEX_ASSISTANT_ID)
    async with store.transaction() as tx:
        saved = await store.get_assistant(ACME_ID, SUPPORT_ID)
        assert saved is not None
        saved.active = False
        await tx.update_assistant(saved)
    with pytest.raises(BadRequest):
        await place(engine)


async def test_hybrid_override_deep_merges(engine: CallEngine, store: MemoryStore) -> None:
    override = {
        "first_message": "Hello Jan",
        "llm_config": {"messages": [{"role": "system", "content": "Be brief"}]},
    }
    call_id = await place(engine, assistant_override=override)
    call = await store.get_call(ACME_ID, call_id)
    assert call is not None
    assert call.first_message == "Hello Jan"
    assert call.assistant_config.llm_config["messages"][0]["content"] == "Be brief"
    assert call.assistant_config.llm_config["provider"] == "rule_based"  # default kept
    assert call.agent_name == "Support"


async def test_transient_assistant_provider_rules(engine: CallEngine, store: MemoryStore) -> None:
    bad_xai = {"assistant": {"provider": "xai_realtime", "stt_config": {"model": "x"}}}
    bad_openai = {"assistant": {"provider": "openai", "tts_config": {"voice": "x"}}}
    for body in (bad_xai, bad_openai):
        parsed = outbound_request({"destination": DESTINATION, **body})
        with pytest.raises(BadRequest):
            await place_outbound(engine, ACME_ID, parsed)
    good = outbound_request(
        {"destination": DESTINATION, "assistant": {"name": "Temp", "provider": "xai_realtime"}}
    )
    result = await place_outbound(engine, ACME_ID, good)
    call = await store.get_call(ACME_ID, result.body["call_id"])
    assert call is not None
    assert call.assistant_id is None
    assert call.agent_name == "Temp"
    assert call.assistant_config.stt_config is msgspec.UNSET


async def test_blocked_destination_is_403_without_originate(
    engine: CallEngine, pbx: FakePbx
) -> None:
    with pytest.raises(Forbidden):
        await place_outbound(
            engine,
            ACME_ID,
            outbound_request({"destination": "+881612345678", "assistant_id": SUPPORT_ID}),
        )
    assert pbx.originated == []


@pytest.mark.parametrize("destination", ["+9009011234567", "+316123456789012", "+15551234567"])
async def test_a_number_that_cannot_exist_is_400_without_originate(
    engine: CallEngine, pbx: FakePbx, destination: str
) -> None:
    with pytest.raises(BadRequest) as invalid:
        await place_outbound(
            engine,
            ACME_ID,
            outbound_request({"destination": destination, "assistant_id": SUPPORT_ID}),
        )
    assert invalid.value.error == "Invalid destination format"
    assert pbx.originated == []


async def test_idempotent_replay_and_conflict(engine: CallEngine, pbx: FakePbx) -> None:
    key = IdempotencyKey("k1", "hash-a")
    results = await asyncio.gather(
        *(place_outbound(engine, ACME_ID, request(), key) for _ in range(5))
    )
    assert len({r.body["call_id"] for r in results}) == 1
    assert len(pbx.originated) == 1
    assert sum(not r.replayed for r in results) == 1
    with pytest.raises(Unprocessable):
        await place_outbound(engine, ACME_ID, request(), IdempotencyKey("k1", "hash-b"))
    other_org = await place_outbound(
        engine,
        org_id(GLOBEX),
        outbound_request({"destination": DESTINATION, "assistant_id": GLOBEX_ASSISTANT_ID}),
        key,
    )
    assert other_org.body["call_id"] != results[0].body["call_id"]  # keys are per organization


async def test_idempotent_replay_of_failure(engine: CallEngine, pbx: FakePbx) -> None:
    key = IdempotencyKey("k2", "h")
    pbx.fail_next_originate = PbxUnavailable("down")
    with pytest.raises(CallNotPlaced) as info:
        await place_outbound(engine, ACME_ID, request(), key)
    replay = await place_outbound(engine, ACME_ID, request(), key)
    assert replay.replayed
    assert replay.status == 503
    assert replay.body == info.value.body()
    assert pbx.originated == []


async def test_inbound_call(engine: CallEngine, store: MemoryStore, pbx: FakePbx) -> None:
    call_id = await engine.inbound.accept(InboundCall("ref-1", "+31623731537", ACME_NUMBERS[0]))
    assert call_id is not None
    assert call_id.startswith("call-_+31623731537_")
    assert len(call_id.rsplit("_", 1)[1]) == 12
    await pbx.answer(call_id)
    call = await store.get_call(ACME_ID, call_id)
    assert call is not None
    assert call.status is CallStatus.IN_PROGRESS
    assert call.caller_phone == "+31623731537"
    assert call.assistant_phone == ACME_NUMBERS[0]
    assert call.direction == "inbound"
    assert call.assistant_id == SUPPORT_ID


async def test_inbound_rejections_and_anonymous(engine: CallEngine) -> None:
    assert await engine.inbound.accept(InboundCall("r", "+31623731537", "+19995550000")) is None
    # a number without an assistant does not answer
    assert await engine.inbound.accept(InboundCall("r", "+31623731537", ACME_NUMBERS[1])) is None
    anonymous = await engine.inbound.accept(InboundCall("r", "anonymous&x", ACME_NUMBERS[0]))
    assert anonymous is not None
    assert anonymous.startswith("call-_unknown_")


async def test_a_number_whose_squad_answers(engine: CallEngine, store: MemoryStore) -> None:
    squad = Squad(
        id="squad_1",
        organization_id=ACME_ID,
        name="Desk",
        members=[
            Member(
                name="desk",
                assistant_id=SUPPORT_ID,
                destinations=[Destination(member="billing", description="Invoices.")],
            ),
            Member(name="billing", assistant={"system_prompt": "You handle billing."}),
        ],
    )
    # The number without an assistant answers with its squad.
    (number,) = [n for n in await store.list_phone_numbers(ACME_ID) if n.number == ACME_NUMBERS[1]]
    async with store.transaction() as tx:
        await tx.insert_squad(squad)
        await tx.update_phone_number(dataclasses.replace(number, squad_id=squad.id))
    call_id = await engine.inbound.accept(InboundCall("r", "+31623731537", ACME_NUMBERS[1]))
    assert call_id is not None
    call = await store.get_call(ACME_ID, call_id)
    assert call is not None
    assert call.assistant_id == SUPPORT_ID  # its first member's
    assert call.squad is not None
    assert [m.name for m in call.squad.members] == ["desk", "billing"]
    assert call.squad.members[1].config.system_prompt == "You handle billing."
