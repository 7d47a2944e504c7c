"""The dialer on a virtual clock over a real SQLite store: calling windows in each contact's
time zone and retry backoff decide when a contact's call is placed."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fakes.calls import calls_of, place_outbound
from fakes.pbx import FakePbx
from fakes.requests import campaign_request, outbound_request
from fakes.world import ACME, DESTINATION, SUPPORT_ID, make_settings, org_id
from voicedock.calls.campaigns.dialer import Dialer
from voicedock.calls.campaigns.manager import CampaignManager
from voicedock.calls.engine import CallEngine
from voicedock.calls.speech_admission import SpeechAdmission
from voicedock.config import SpeechSettings
from voicedock.domain.campaigns import ContactState
from voicedock.domain.records import Call
from voicedock.errors import PbxUnavailable
from voicedock.organizations.config_mirror import mirror_config
from voicedock.pipeline.hearing.recognition import NodeRecognition
from voicedock.pipeline.pools.worker_pool import WorkerPool
from voicedock.store import Store, open_store
from voicedock.store.errors import TransactionConflict

pytestmark = pytest.mark.unit

AMSTERDAM_CONTACT = "+31612345001"
NEW_YORK_CONTACT = "+12125550101"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    store: Store
    pbx: FakePbx
    clock: Clock
    engine: CallEngine
    manager: CampaignManager
    dialer: Dialer


@asynccontextmanager
async def open_world(
    tmp_path: Path, admission: SpeechAdmission | None = None
) -> AsyncIterator[World]:
    """The dialer's world; ``admission``: the node's offline speech admission (else the
    node's own, as ``[speech]`` makes it)."""
    settings = make_settings(f"sqlite:///{tmp_path / 'd.db'}")
    settings.policy.allowed_countries.append("US")  # the New York contact
    for number in settings.numbers:
        number.max_concurrent_calls = 10
    store = await open_store(settings.database.url)
    await store.migrate()
    await mirror_config(store, settings)
    clock = Clock(datetime(2026, 11, 23, 8, 30, tzinfo=UTC))  # a Monday
    pbx = FakePbx()
    manager = CampaignManager(store, settings, clock)
    engine, runner = calls_of(store, pbx, settings, clock, observers=[manager], admission=admission)
    try:
        async with runner:
            await pbx.start(runner.events.handle_pbx_event)
            dialer = Dialer(store, engine, manager, settings.policy, clock)
            yield World(store, pbx, clock, engine, manager, dialer)
    finally:
        await store.aclose()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with open_world(tmp_path) as world:
        yield world


def body(**extra: object) -> dict[str, object]:
    return {
        "name": "Window",
        "assistant": {"first_message": "Hello"},
        "timezone": "Europe/Amsterdam",
        "calling_window": {"days": [1, 2, 3, 4, 5], "start": "09:00", "end": "17:00"},
        **extra,
    }


async def test_contacts_wait_for_their_window(world: World) -> None:
    request = campaign_request(
        body(
            contacts=[
                {"destination": AMSTERDAM_CONTACT},  # the campaign's zone: open at 09:30
                {"destination": NEW_YORK_CONTACT, "timezone": "America/New_York"},  # 03:30
            ]
        )
    )
    await world.manager.create(org_id(ACME), request)
    await world.dialer.dial_due()
    assert [r.destination for r in world.pbx.originated] == [AMSTERDAM_CONTACT]
    world.clock.now = datetime(2026, 11, 23, 13, 59, tzinfo=UTC)  # 08:59 in New York
    await world.dialer.dial_due()
    assert len(world.pbx.originated) == 1
    world.clock.now = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # 09:00 in New York
    await world.dialer.dial_due()
    assert [r.destination for r in world.pbx.originated] == [AMSTERDAM_CONTACT, NEW_YORK_CONTACT]


async def test_retry_waits_its_backoff(world: World) -> None:
    request = campaign_request(
        body(
            contacts=[{"destination": AMSTERDAM_CONTACT}],
            retries={"no-answer": {"max_attempts": 2, "backoff_seconds": 300}},
        )
    )
    campaign = await world.manager.create(org_id(ACME), request)
    await world.dialer.dial_due()
    (first,) = world.pbx.originated
    await world.pbx.hang_up_remote(first.call_id, 19)  # no answer
    world.clock.now += timedelta(seconds=299)
    await world.dialer.dial_due()
    assert len(world.pbx.originated) == 1
    world.clock.now += timedelta(seconds=1)
    await world.dialer.dial_due()
    assert len(world.pbx.originated) == 2
    await world.pbx.hang_up_remote(world.pbx.originated[1].call_id, 19)
    contacts, _ = await world.store.list_campaign_contacts(campaign.id, None, 10, 0)
    assert [(c.state, c.outcome, c.attempts) for c in contacts] == [
        (ContactState.DONE, "no-answer", 2)
    ]
    await world.dialer.dial_due()  # nothing open: the campaign is finished
    finished = await world.store.get_campaign(None, campaign.id)
    assert finished is not None
    assert finished.status.value == "finished"


async def test_contacts_wait_for_the_pbx(world: World) -> None:
    request = campaign_request(body(contacts=[{"destination": AMSTERDAM_CONTACT}]))
    campaign = await world.manager.create(org_id(ACME), request)
    world.pbx.fail_next_originate = PbxUnavailable("ARI is not connected")
    await world.dialer.dial_due()  # the PBX refuses: not an attempt, the contact waits
    contacts, _ = await world.store.list_campaign_contacts(campaign.id, None, 10, 0)
    assert [(c.state, c.attempts) for c in contacts] == [(ContactState.PENDING, 0)]
    world.clock.now += timedelta(seconds=5)
    await world.dialer.dial_due()
    assert [r.destination for r in world.pbx.originated] == [AMSTERDAM_CONTACT]
    contacts, _ = await world.store.list_campaign_contacts(campaign.id, None, 10, 0)
    assert [(c.state, c.attempts) for c in contacts] == [(ContactState.CALLING, 1)]


def dialer_asking(world: World, can_dial: Callable[[], bool]) -> Dialer:
    """The world's dialer, asking ``can_dial`` whether the node may dial."""
    return Dialer(
        world.store,
        world.engine,
        world.manager,
        make_settings().policy,
        world.clock,
        can_dial=can_dial,
    )


async def test_no_dialing_while_the_pbx_is_down(world: World) -> None:
    up = False
    dialer = dialer_asking(world, lambda: up)
    request = campaign_request(body(contacts=[{"destination": AMSTERDAM_CONTACT}]))
    await world.manager.create(org_id(ACME), request)
    await dialer.dial_due()
    assert world.pbx.originated == []
    up = True
    await dialer.dial_due()
    assert len(world.pbx.originated) == 1


async def test_a_pbx_that_goes_down_during_a_round_stops_its_dialing(world: World) -> None:
    """The round asked the PBX when it began; each dial asks again, so the contacts after the
    moment it went down wait for it rather than being dialed into it."""
    up = True
    dialer = dialer_asking(world, lambda: up)
    originate = world.pbx.originate

    async def then_down(request: Any) -> None:
        nonlocal up
        await originate(request)
        up = False  # the PBX's links drop once it took the first call

    world.pbx.originate = then_down  # type: ignore[method-assign]
    contacts = [{"destination": f"+3161234500{k}"} for k in range(1, 4)]
    campaign = await world.manager.create(org_id(ACME), campaign_request(body(contacts=contacts)))
    await dialer.dial_due()
    assert [r.destination for r in world.pbx.originated] == ["+31612345001"]
    listed, _ = await world.store.list_campaign_contacts(campaign.id, None, 10, 0)
    assert sorted((c.destination, c.state, c.attempts) for c in listed) == [
        ("+31612345001", ContactState.CALLING, 1),
        ("+31612345002", ContactState.PENDING, 0),
        ("+31612345003", ContactState.PENDING, 0),
    ]
    world.pbx.originate = originate  # type: ignore[method-assign]
    up = True  # the next round dials the others
    await dialer.dial_due()
    assert len(world.pbx.originated) == 3


async def test_contacts_wait_while_offline_speech_is_at_capacity(tmp_path: Path) -> None:
    """Not an attempt, not dropped: the dialer comes back after Retry-After and calls them."""
    speech = SpeechSettings(admission_wait_ms=100)
    clock = [100.0]
    pool = WorkerPool(1, window_s=1.0, clock=lambda: clock[0])
    admission = SpeechAdmission(NodeRecognition(pool, admission_wait_s=0.1), speech)
    async with open_world(tmp_path, admission) as world:
        gate = threading.Event()
        try:
            pool.submit(lambda: gate.wait(5))  # the worker is taken, a final waits behind it
            waiting = pool.submit(lambda: None)
            clock[0] += 0.5
            request = campaign_request(body(contacts=[{"destination": AMSTERDAM_CONTACT}]))
            campaign = await world.manager.create(org_id(ACME), request)
            delay = await world.dialer.dial_due()
            assert world.pbx.originated == []
            assert delay == timedelta(milliseconds=250)  # the idle poll: no longer than Retry-After
            assert admission.refused == {"campaign": 1}
            contacts, _ = await world.store.list_campaign_contacts(campaign.id, None, 10, 0)
            assert [(c.state, c.attempts) for c in contacts] == [(ContactState.PENDING, 0)]
            gate.set()
            await waiting.future
            clock[0] += 1.1  # the long wait left the window
            await world.dialer.dial_due()
            assert [r.destination for r in world.pbx.originated] == [AMSTERDAM_CONTACT]
        finally:
            gate.set()
            await pool.aclose()


async def test_contacts_and_scheduled_calls_are_placed_as_rest_calls_are(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One function places a call, whoever asks: ``Placement.place``."""
    placed: list[str] = []
    place = world.engine.placement.place

    async def watched(*args: Any, **kwargs: Any) -> Call | timedelta | None:
        call = await place(*args, **kwargs)
        if isinstance(call, Call):
            placed.append(call.id)
        return call

    monkeypatch.setattr(world.engine.placement, "place", watched)
    later = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
    later["scheduled_at"] = "2026-11-23T08:31:00Z"
    scheduled = await place_outbound(world.engine, org_id(ACME), outbound_request(later))
    assert scheduled.status == 201
    request = campaign_request(body(contacts=[{"destination": AMSTERDAM_CONTACT}]))
    await world.manager.create(org_id(ACME), request)
    world.clock.now += timedelta(minutes=1)
    now = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
    await place_outbound(world.engine, org_id(ACME), outbound_request(now))
    await world.dialer.dial_due()
    originated = [r.call_id for r in world.pbx.originated]
    assert len(originated) == 3  # the REST call, the scheduled call, the contact's
    assert scheduled.body["call_id"] in originated
    assert placed == originated


async def test_a_round_that_gives_way_to_another_nodes_claim_is_retried_without_an_error(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """On PostgreSQL two nodes' claims may deadlock: the server rolls one back (nothing
    committed). That round is tried again like one the store was unavailable for, a warning
    and not an error."""
    dialer = Dialer(
        world.store,
        world.engine,
        world.manager,
        make_settings("sqlite:///:memory:").policy,
        world.clock,
        idle_poll=timedelta(milliseconds=10),
    )
    rounds: list[str] = []
    dial_due = dialer.dial_due

    async def conflicting_once() -> timedelta:
        if not rounds:
            rounds.append("conflict")
            raise TransactionConflict("postgres: DeadlockDetectedError: deadlock detected")
        rounds.append("dialed")
        return await dial_due()

    dialer.dial_due = conflicting_once  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="voicedock"):
        async with asyncio.TaskGroup() as tg:
            running = tg.create_task(dialer.run())
            while len(rounds) < 2:
                await asyncio.sleep(0.01)
            running.cancel()
    assert rounds[:2] == ["conflict", "dialed"]
    logged = [(r.levelname, r.getMessage()) for r in caplog.records if "dialer" in r.getMessage()]
    assert [level for level, _ in logged] == ["WARNING"], logged
    assert "gave way" in logged[0][1]
