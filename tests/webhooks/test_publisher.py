"""The publisher maps call events to webhook payloads and fans them out in the engine's
transaction (engine + MemoryStore + FakePbx; no sockets)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from fakes.calls import calls_of, place_outbound
from fakes.memory_store import MemoryStore
from fakes.pbx import FakePbx
from fakes.requests import outbound_request
from fakes.turns import Turn
from fakes.world import ACME, DESTINATION, GLOBEX, SUPPORT_ID, make_settings, org_id
from voicedock.calls.engine import CallEngine
from voicedock.calls.live.record import LiveRecord
from voicedock.domain.json import JsonValue
from voicedock.domain.records import Call, CallEvent, CallStatus, Direction
from voicedock.domain.webhooks import WebhookEndpoint, generate_secret
from voicedock.organizations.config_mirror import mirror_config
from voicedock.webhooks.publisher import WebhookPublisher, choose_endpoints, payloads_for_event

pytestmark = pytest.mark.unit

AT = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def endpoint(
    name: str, org: str = ACME, assistant_id: str | None = None, types: list[str] | None = None
) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=f"we_{name}",
        organization_id=org_id(org),
        url=f"https://hooks.example.com/{name}",
        secret=generate_secret(),
        assistant_id=assistant_id,
        event_types=types or [],
    )


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    store = MemoryStore()
    await mirror_config(store, make_settings())
    yield store
    await store.aclose()


@pytest.fixture
async def engine(store: MemoryStore) -> AsyncIterator[tuple[CallEngine, FakePbx, list[int]]]:
    pbx = FakePbx()
    settings = make_settings()
    nudges: list[int] = []
    publisher = WebhookPublisher(on_enqueued=lambda: nudges.append(1))
    engine, runner = calls_of(store, pbx, settings, observers=[publisher])
    async with runner:  # the service's event path
        await pbx.start(runner.events.handle_pbx_event)
        yield engine, pbx, nudges


async def add(store: MemoryStore, *endpoints: WebhookEndpoint) -> None:
    async with store.transaction() as tx:
        for e in endpoints:
            await tx.insert_webhook_endpoint(e)


def queued(store: MemoryStore, endpoint_id: str) -> list[dict[str, Any]]:
    records = sorted(store.deliveries.records.values(), key=lambda r: int(r.id.split("_")[1]))
    return [json.loads(r.payload) for r in records if r.endpoint_id == endpoint_id]


async def place(engine: CallEngine) -> str:
    request = outbound_request({"destination": DESTINATION, "assistant_id": SUPPORT_ID})
    result = await place_outbound(engine, org_id(ACME), request)
    return str(result.body["call_id"])


async def test_lifecycle_queues_status_updates_and_one_report(
    engine: tuple[CallEngine, FakePbx, list[int]], store: MemoryStore
) -> None:
    eng, pbx, nudges = engine
    await add(store, endpoint("all"), endpoint("other-org", org=GLOBEX))
    call_id = await place(eng)
    await pbx.answer(call_id)
    await eng.records.store_live_record(
        call_id,
        LiveRecord(
            end_reason="caller-goodbye",
            transcript=[Turn("assistant", "Hello", 1.0, 2.0), Turn("user", "Bye", 3.0, 4.0)],
            summary="Said goodbye.",
            analysis_result={"summary": "Said goodbye.", "sentiment": 5},
        ),
    )
    await pbx.hang_up_remote(call_id)
    await pbx.hang_up_remote(call_id)  # a duplicate HANGUP reports nothing more
    sent = queued(store, "we_all")
    assert [(p["type"], p["data"].get("status")) for p in sent] == [
        ("status-update", "connecting"),
        ("status-update", "in-progress"),
        ("status-update", "ended"),
        ("end-of-call-report", "ended"),
    ]
    report = sent[-1]["data"]
    assert [m["content"] for m in report["messages"]] == ["Hello", "Bye"]
    assert report["analysis_result"] == {"summary": "Said goodbye.", "sentiment": 5}
    assert report["end_reason"] == "remote-hangup"
    assert "assistant_config" not in report
    assert sent[1]["data"]["previous_status"] == "connecting"
    assert queued(store, "we_other-org") == []  # another organization's endpoint
    assert nudges


CONSENT: dict[str, JsonValue] = {
    "mode": "opt_out_keypad",
    "outcome": "accepted",
    "at": "2026-03-01T09:00:08.000Z",
}


async def test_the_report_carries_the_calls_usage_per_provider_and_its_switches(
    engine: tuple[CallEngine, FakePbx, list[int]], store: MemoryStore
) -> None:
    eng, pbx, _ = engine
    await add(store, endpoint("all"))
    call_id = await place(eng)
    await pbx.answer(call_id)
    speech = [  # the voice failed midway: its plan's Piper spoke the rest
        {"kind": "stt", "provider": "offline", "seconds": 1.0},
        {"kind": "tts", "provider": "elevenlabs", "characters": 5},
        {"kind": "tts", "provider": "piper", "characters": 3},
    ]
    await eng.records.store_live_record(
        call_id,
        LiveRecord(
            end_reason="caller-goodbye",
            transcript=[Turn("assistant", "Hello", 1.0, 2.0), Turn("user", "Bye", 3.0, 4.0)],
            latency=[{"endpointing_ms": 300.0, "tts_provider": "piper"}],
            speech_usage=speech,
            provider_switches=2,
            consent=CONSENT,
        ),
    )
    await pbx.hang_up_remote(call_id)
    report = queued(store, "we_all")[-1]
    assert report["type"] == "end-of-call-report"
    usage = report["data"]["usage"]
    assert usage["stt"] == [{"provider": "offline", "audio_seconds": 1.0}]
    assert usage["tts"] == [
        {"provider": "elevenlabs", "characters": 5},
        {"provider": "piper", "characters": 3},
    ]
    assert usage["billable_seconds"] >= 0
    assert report["data"]["provider_switches"] == 2
    assert report["data"]["consent"] == CONSENT
    assert report["data"]["latency"] == [{"endpointing_ms": 300.0, "tts_provider": "piper"}]
    stored = await store.get_call(None, call_id)
    assert stored is not None
    assert stored.provider_switches == 2
    assert stored.consent == CONSENT


async def test_transcript_is_opt_in_and_assistant_endpoint_overrides(
    engine: tuple[CallEngine, FakePbx, list[int]], store: MemoryStore
) -> None:
    eng, pbx, _ = engine
    await add(
        store,
        endpoint("org-wide"),
        endpoint("support-reports", assistant_id=SUPPORT_ID, types=["end-of-call-report"]),
        endpoint("transcripts", types=["transcript"]),
    )
    call_id = await place(eng)
    await pbx.answer(call_id)
    await eng.records.store_transcript_turn(call_id, Turn("user", "Hello there", 1.0, 2.0))
    await pbx.hang_up_remote(call_id)
    assert [p["type"] for p in queued(store, "we_org-wide")] == ["status-update"] * 3
    assert [p["type"] for p in queued(store, "we_support-reports")] == ["end-of-call-report"]
    transcripts = queued(store, "we_transcripts")
    assert [(p["type"], p["data"]["content"]) for p in transcripts] == [
        ("transcript", "Hello there")
    ]


async def test_rolled_back_change_queues_nothing(store: MemoryStore) -> None:
    await add(store, endpoint("all"))
    publisher = WebhookPublisher()
    call = Call("call-x", org_id(ACME), Direction.OUTBOUND, CallStatus.CONNECTING, None, None)
    event = CallEvent("call-x", "status", {"to": "connecting"})

    async def failing_change() -> None:
        async with store.transaction() as tx:
            await publisher.on_event(tx, call, event)
            raise RuntimeError("the state change failed")

    with pytest.raises(RuntimeError):
        await failing_change()
    assert store.deliveries.records == {}


def test_transfer_events_become_transfer_updates() -> None:
    call = Call("call-t", "org", Direction.INBOUND, CallStatus.IN_PROGRESS, None, None)
    started = CallEvent(
        "call-t", "control", {"type": "transfer", "destination": "+31201234567", "mode": "blind"}
    )
    failed = CallEvent("call-t", "transfer", {"result": "failed", "detail": "busy"}, AT)
    (update,) = payloads_for_event(call, started)
    assert update["type"] == "transfer-update"
    assert update["data"] == {"status": "started", "destination": "+31201234567", "mode": "blind"}
    (failure,) = payloads_for_event(call, failed, requested="+31201234567")
    assert failure["data"]["destination"] == "+31201234567"
    assert failure["data"]["status"] == "failed"
    assert failure["data"]["error"] == "busy"
    refused = CallEvent(
        "call-t",
        "security",
        {"type": "transfer-refused", "reason": "blocked-prefix", "destination": "+90900****"},
    )
    (refusal,) = payloads_for_event(call, refused)
    assert refusal["data"]["status"] == "refused"
    assert refusal["data"]["error"] == "blocked-prefix"
    call.status = CallStatus.ENDED
    call.transferred_to = "+31201234567"
    ended = CallEvent(
        "call-t", "status", {"from": "in-progress", "to": "ended", "end_reason": "transferred"}
    )
    kinds = [(p["type"], p["data"]["status"]) for p in payloads_for_event(call, ended)]
    assert kinds == [("status-update", "ended"), ("transfer-update", "completed")]
    say = CallEvent("call-t", "control", {"type": "say", "content": "hi"})
    assert payloads_for_event(call, say) == []
    simulated = CallEvent(  # a test call's: recorded, never dialled
        "call-t",
        "control",
        {"type": "transfer", "destination": "sales", "mode": "warm", "result": "simulated"},
    )
    (update,) = payloads_for_event(call, simulated)
    assert update["data"] == {"status": "simulated", "destination": "sales", "mode": "warm"}


def test_a_resumed_call_is_a_status_update_with_the_gap() -> None:
    call = Call("call-r", "org", Direction.OUTBOUND, CallStatus.IN_PROGRESS, None, None)
    gap = {"gap_seconds": 6.2, "last_activity_at": "2026-01-01T10:00:00+00:00"}
    (update,) = payloads_for_event(call, CallEvent("call-r", "resumed", gap, AT))
    assert update["type"] == "status-update"
    assert update["data"] == {
        "status": "in-progress",
        "previous_status": "in-progress",
        "resumed": gap,
    }


def test_an_answering_machine_verdict_is_its_own_event_with_the_evidence() -> None:
    call = Call("call-m", "org", Direction.OUTBOUND, CallStatus.IN_PROGRESS, None, None)
    evidence = {"reason": "beep", "decided_at_ms": 2140, "beep_at_ms": 2000}
    verdict = CallEvent("call-m", "answering-machine", {"result": "machine", "evidence": evidence})
    (payload,) = payloads_for_event(call, verdict)
    assert payload["type"] == "answering-machine"
    assert payload["data"] == {"result": "machine", "evidence": evidence}


def test_a_phone_menu_step_is_its_own_event_with_what_was_heard_and_pressed() -> None:
    call = Call("call-p", "org", Direction.OUTBOUND, CallStatus.IN_PROGRESS, None, None)
    step = {"heard": "menu", "pressed": "2", "at_ms": 7860, "music_ms": 60, "quiet_ms": 1820}
    (payload,) = payloads_for_event(call, CallEvent("call-p", "phone-menu", step))
    assert payload["type"] == "phone-menu"
    assert payload["data"] == step


def test_choose_endpoints_prefers_the_assistants_own() -> None:
    general, own = endpoint("g"), endpoint("o", assistant_id="a1", types=["status-update"])
    assert choose_endpoints([general, own], "a1", "status-update") == [own]
    assert choose_endpoints([general, own], "a1", "end-of-call-report") == [general]
    assert choose_endpoints([general, own], "a2", "status-update") == [general]
    general.enabled = False
    assert choose_endpoints([general], None, "status-update") == []


def test_a_provider_switch_is_its_own_event_naming_both_entries_and_why() -> None:
    call = Call("call-s", "org", Direction.OUTBOUND, CallStatus.IN_PROGRESS, None, None)
    data = {
        "engine": "llm",
        "from": "openai/llm.example/gpt-4o-mini",
        "to": None,
        "reason": "timeout",
    }
    (payload,) = payloads_for_event(call, CallEvent("call-s", "provider-switch", data))
    assert payload["type"] == "provider-switch"
    assert payload["data"] == data
