"""The engine's two entry points: ``PbxEvents.apply`` returns the call as each event left it
(the runner acts on that record), and ``place`` places every outbound call, whoever asks, in
one transaction with what the asker claims and records."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from fakes.calls import place_outbound
from fakes.memory_store import MemoryStore
from fakes.pbx import FakePbx
from fakes.requests import outbound_request
from fakes.world import ACME, DESTINATION, SUPPORT_ID, make_settings, org_id
from voicedock.calls.assistants.resolve import ResolvedAssistant
from voicedock.calls.engine import CallEngine
from voicedock.calls.engine.placement import Originate
from voicedock.calls.outbound.idempotency import IdempotencyKey
from voicedock.calls.outbound.new_call import NewCall
from voicedock.domain.assistant_config import config_of
from voicedock.domain.ids import new_outbound_call_id
from voicedock.domain.records import Call, CallStatus, IdempotencyRecord
from voicedock.errors import StoreUnavailable
from voicedock.organizations.config_mirror import mirror_config
from voicedock.pbx.base import PbxEvent, PbxEventKind
from voicedock.store import Store, open_store
from voicedock.store.base import Transaction

pytestmark = pytest.mark.unit

ACME_ID = org_id(ACME)


async def placed_call(engine: CallEngine) -> str:
    request = outbound_request({"destination": DESTINATION, "assistant_id": SUPPORT_ID})
    return str((await place_outbound(engine, ACME_ID, request)).body["call_id"])


async def test_each_event_returns_the_call_as_it_left_it(
    engine: CallEngine, store: MemoryStore
) -> None:
    call_id = await placed_call(engine)
    answered = await engine.pbx_events.apply(PbxEvent(call_id, PbxEventKind.ANSWERED))
    assert answered.moved
    assert answered.call == await store.get_call(None, call_id)  # the record as stored
    assert answered.to_serve is answered.call
    assert answered.call is not None
    assert answered.call.status is CallStatus.IN_PROGRESS

    again = await engine.pbx_events.apply(PbxEvent(call_id, PbxEventKind.ANSWERED))
    assert not again.moved  # nothing stored twice
    assert again.to_serve == answered.call  # served unless it already is (the runner's call)

    ended = await engine.pbx_events.apply(PbxEvent(call_id, PbxEventKind.HANGUP, cause=16))
    assert ended.moved
    assert ended.call is not None
    assert (ended.call.status, ended.call.end_reason) == (CallStatus.ENDED, "remote-hangup")
    assert ended.to_serve is None

    late = await engine.pbx_events.apply(PbxEvent(call_id, PbxEventKind.ANSWERED))
    assert (late.moved, late.to_serve) == (False, None)  # ended: never served again
    assert late.call == ended.call

    unknown = await engine.pbx_events.apply(PbxEvent("call-outbound-nope", PbxEventKind.ANSWERED))
    assert (unknown.call, unknown.moved, unknown.to_serve) == (None, False, None)


async def test_a_calls_times_are_when_its_events_were_heard_not_when_they_were_stored(
    engine: CallEngine,
) -> None:
    """An answer heard at T and stored later (it waited behind the call's earlier writes on a
    loaded node) starts the call at T: its duration, billing and timings count from there."""
    call_id = await placed_call(engine)
    heard = engine.pbx_events.now() - timedelta(seconds=2)
    answered = await engine.pbx_events.apply(PbxEvent(call_id, PbxEventKind.ANSWERED), heard)
    assert answered.call is not None
    assert answered.call.started_at == heard
    hung_up = heard + timedelta(seconds=1)
    ended = await engine.pbx_events.apply(PbxEvent(call_id, PbxEventKind.HANGUP, cause=16), hung_up)
    assert ended.call is not None
    assert (ended.call.ended_at, ended.call.duration_seconds) == (hung_up, 1)


class Ask:
    """A test asker: writes an idempotency record under ``key`` while it claims (to see
    whether the claim committed), then asks for ``dial`` or tells to wait."""

    def __init__(self, dial: NewCall | timedelta | None, key: str = "claimed") -> None:
        self.dial = dial
        self.key = IdempotencyKey(key, "hash")
        self.seen_in_tx: list[Call | None] = []

    async def claim(self, tx: Transaction, now: datetime) -> NewCall | timedelta | None:
        key = self.key
        await tx.put_idempotency(
            IdempotencyRecord(ACME_ID, key.key, key.request_hash, 200, {}, now)
        )
        return self.dial

    async def placed(self, tx: Transaction, call: Call, now: datetime) -> None:
        self.seen_in_tx.append(await tx.get_call_for_update(call.id))


def new_call(**changes: object) -> NewCall:
    fields: dict[str, object] = {
        "call_id": new_outbound_call_id(),
        "organization_id": ACME_ID,
        "destination": DESTINATION,
        "assistant": ResolvedAssistant(SUPPORT_ID, "Support", "Acme Corp", config_of({})),
        "context": None,
        "ring_timeout_seconds": 30,
        **changes,
    }
    return NewCall(**fields)  # type: ignore[arg-type]


async def claimed(store: Store, key: str = "claimed") -> bool:
    async with store.transaction() as tx:
        return await tx.get_idempotency(ACME_ID, key) is not None


async def test_place_stores_the_call_with_the_asker_s_record_then_launches_its_originate(
    engine: CallEngine, store: MemoryStore, pbx: FakePbx
) -> None:
    ask = Ask(new_call())
    launched: list[Originate] = []

    async def launch(originate: Originate) -> None:
        launched.append(originate)

    call = await engine.placement.place(ask, launch=launch)
    assert isinstance(call, Call)
    assert call.status is CallStatus.CONNECTING
    assert [(c.id, c.status) for c in ask.seen_in_tx if c is not None] == [
        (call.id, CallStatus.CONNECTING)
    ]  # stored in the asker's transaction
    assert await claimed(store)
    assert pbx.originated == []  # handed to the asker's launch, not run yet
    await launched[0]()
    assert [r.call_id for r in pbx.originated] == [call.id]


async def test_place_rolls_the_claim_back_when_it_must_wait(
    engine: CallEngine, store: MemoryStore, pbx: FakePbx
) -> None:
    ask = Ask(timedelta(seconds=3))
    assert await engine.placement.place(ask) == timedelta(seconds=3)
    assert not await claimed(store)  # rolled back with the dial
    assert await store.list_active_calls() == []
    assert pbx.originated == []


async def test_place_rolls_the_claim_back_when_a_limit_holds_the_call(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'limits.db'}")  # the SQL store counts
    settings.trunks[0].max_channels = 1
    store = await open_store(settings.database.url)
    try:
        await store.migrate()
        await mirror_config(store, settings)
        pbx = FakePbx()
        engine = CallEngine(store, pbx, settings)
        first = Ask(new_call(), key="first")
        assert isinstance(await engine.placement.place(first), Call)  # the trunk's one channel
        second = Ask(new_call(), key="second")
        assert isinstance(await engine.placement.place(second), timedelta)
        assert await claimed(store, "first")
        assert not await claimed(store, "second")  # the claim went with the held-back dial
        assert len(await store.list_active_calls()) == 1
        assert len(pbx.originated) == 1
    finally:
        await store.aclose()


async def test_place_commits_what_the_claim_did_when_there_is_nothing_to_dial(
    engine: CallEngine, store: MemoryStore, pbx: FakePbx
) -> None:
    assert await engine.placement.place(Ask(None)) is None
    assert await claimed(store)  # a contact settled, a scheduled call expired: committed
    assert await store.list_active_calls() == []
    assert pbx.originated == []


class FailingAsk(Ask):
    """An asker whose record cannot be stored (its key taken meanwhile, the store gone)."""

    async def placed(self, tx: Transaction, call: Call, now: datetime) -> None:
        raise StoreUnavailable("the store went away")


async def test_a_placement_rolled_back_after_its_dial_was_admitted_keeps_nothing_of_it(
    engine: CallEngine, store: MemoryStore, pbx: FakePbx
) -> None:
    """The dial passed the limits, then the transaction failed: nothing is originated, and the
    node keeps nothing of it (an entry per such call would stay as long as the node runs)."""
    with pytest.raises(StoreUnavailable):
        await engine.placement.place(FailingAsk(new_call()))
    assert await store.list_active_calls() == []
    assert pbx.originated == []
    assert engine.placement._trunk_dials == {}
    assert isinstance(await engine.placement.place(Ask(new_call())), Call)  # the next one goes
    assert engine.placement._trunk_dials == {}  # its dial done once originated
