"""GET /usage's aggregation in SQL: groups, UTC day boundaries, billable rounding, speech
providers and empty ranges, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from voicedock.domain.json import JsonValue
from voicedock.domain.records import Call, CallStatus, Direction
from voicedock.domain.usage import (
    SpokenTurn,
    billable_seconds,
    call_usage,
    connected_ms,
    speech_usage,
)
from voicedock.organizations.usage import usage_report
from voicedock.store import Store

from .builders import insert_call, make_call, seed_assistant, seed_number, seed_org

pytestmark = pytest.mark.unit

DAY1 = date(2026, 3, 1)
DAY2 = date(2026, 3, 2)


def _utc(day: date, h: int, m: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, h, m, s, us, tzinfo=UTC)


def _call(
    org_id: str,
    created: datetime,
    connected: timedelta | None,
    *,
    direction: Direction = Direction.OUTBOUND,
    status: CallStatus = CallStatus.ENDED,
    end_reason: str | None = "customer-ended-call",
    assistant_id: str | None = None,
    number_id: str | None = None,
    campaign_id: str | None = None,
    speech: list[dict[str, object]] | None = None,
) -> Call:
    call = make_call(org_id, status=status, number_id=number_id, created_at=created)
    answered = created + timedelta(seconds=3)
    return dataclasses.replace(
        call,
        direction=direction,
        end_reason=end_reason,
        assistant_id=assistant_id,
        campaign_id=campaign_id,
        started_at=answered if connected is not None else None,
        ended_at=answered + connected if connected is not None else created + timedelta(seconds=20),
        speech_usage=speech,
    )


def _stt(provider: str, seconds: float) -> dict[str, object]:
    return {"kind": "stt", "provider": provider, "seconds": seconds}


def _tts(provider: str, characters: int) -> dict[str, object]:
    return {"kind": "tts", "provider": provider, "characters": characters}


async def _world(store: Store) -> tuple[str, str, str, str, str]:
    org, other = await seed_org(store), await seed_org(store)
    a1, a2 = await seed_assistant(store, org.id), await seed_assistant(store, org.id)
    number = await seed_number(store, org.id)
    calls = [
        # day 1, first and last microsecond of the UTC day
        _call(
            org.id,
            _utc(DAY1, 0, 0, 0, 0),
            timedelta(seconds=10),  # exactly 10 s: 10 billable
            assistant_id=a1.id,
            number_id=number.id,
            speech=[_stt("whisper", 4.5), _tts("piper", 120)],
        ),
        _call(
            org.id,
            _utc(DAY1, 23, 59, 40, 999_000),
            timedelta(seconds=10, milliseconds=1),  # 10.001 s: 11 billable
            direction=Direction.INBOUND,
            assistant_id=a2.id,
            campaign_id="camp_1",
            speech=[_stt("whisper", 2.25), _tts("piper", 30), _tts("elevenlabs", 7)],
        ),
        # day 2: one never answered, one answered for 61.5 s
        _call(
            org.id,
            _utc(DAY2, 0, 0, 0, 0),
            None,
            status=CallStatus.FAILED,
            end_reason="no-answer",
            assistant_id=a1.id,
        ),
        _call(
            org.id,
            _utc(DAY2, 12),
            timedelta(seconds=61, milliseconds=500),
            assistant_id=a1.id,
            number_id=number.id,
            campaign_id="camp_1",
            speech=[_stt("deepgram", 20.0), _tts("piper", 400)],
        ),
        # another organization's call on day 1: never counted
        _call(other.id, _utc(DAY1, 10), timedelta(seconds=99), speech=[_tts("piper", 999)]),
        # the day before: outside the range
        _call(org.id, _utc(DAY1, 0) - timedelta(microseconds=1), timedelta(seconds=5)),
    ]
    for call in calls:
        await insert_call(store, call)
    return org.id, a1.id, a2.id, number.id, other.id


async def test_grouped_by_utc_day(store: Store) -> None:
    org_id, *_ = await _world(store)
    report = await usage_report(store, org_id, DAY1, DAY2, "day")
    groups = {g["key"]: g for g in report["groups"]}
    assert list(groups) == ["2026-03-01", "2026-03-02"]
    d1, d2 = groups["2026-03-01"], groups["2026-03-02"]
    assert d1["calls"] == 2
    assert d1["connected_seconds"] == pytest.approx(20.001)
    assert d1["billable_seconds"] == 10 + 11
    assert d1["stt"] == [{"provider": "whisper", "audio_seconds": 6.75}]
    assert d1["tts"] == [
        {"provider": "elevenlabs", "characters": 7},
        {"provider": "piper", "characters": 150},
    ]
    assert [(o["direction"], o["billable_seconds"]) for o in d1["by_outcome"]] == [
        ("inbound", 11),
        ("outbound", 10),
    ]
    assert d2["calls"] == 2
    assert d2["billable_seconds"] == 62
    assert d2["connected_minutes"] == round(61.5 / 60, 2)
    outcomes = {(o["status"], o["end_reason"]): o for o in d2["by_outcome"]}
    assert outcomes["failed", "no-answer"]["calls"] == 1
    assert outcomes["failed", "no-answer"]["billable_seconds"] == 0
    totals = report["totals"]
    assert totals["calls"] == 4
    assert totals["billable_seconds"] == 83
    assert totals["tts"] == [
        {"provider": "elevenlabs", "characters": 7},
        {"provider": "piper", "characters": 550},
    ]
    assert totals["stt"] == [
        {"provider": "deepgram", "audio_seconds": 20.0},
        {"provider": "whisper", "audio_seconds": 6.75},
    ]


async def test_grouped_by_assistant_number_and_campaign(store: Store) -> None:
    org_id, a1, a2, number_id, _ = await _world(store)
    by_assistant = await usage_report(store, org_id, DAY1, DAY2, "assistant")
    calls = {g["key"]: g["calls"] for g in by_assistant["groups"]}
    assert calls == {a1: 3, a2: 1}
    by_number = await usage_report(store, org_id, DAY1, DAY2, "number")
    groups = {g["key"]: g for g in by_number["groups"]}
    assert groups[number_id]["calls"] == 2
    assert groups[number_id]["billable_seconds"] == 72
    assert groups[None]["calls"] == 2  # the calls without a number, listed last
    assert by_number["groups"][-1]["key"] is None
    by_campaign = await usage_report(store, org_id, DAY1, DAY2, "campaign")
    groups = {g["key"]: g for g in by_campaign["groups"]}
    assert groups["camp_1"]["calls"] == 2
    assert groups["camp_1"]["tts"] == [
        {"provider": "elevenlabs", "characters": 7},
        {"provider": "piper", "characters": 430},
    ]


async def test_one_day_and_empty_ranges(store: Store) -> None:
    org_id, *_, other_id = await _world(store)
    only_day2 = await usage_report(store, org_id, DAY2, DAY2, "day")
    assert [g["key"] for g in only_day2["groups"]] == ["2026-03-02"]
    empty = await usage_report(store, org_id, date(2026, 4, 1), date(2026, 4, 30), "day")
    assert empty["groups"] == []
    assert empty["totals"]["calls"] == 0
    assert empty["totals"]["billable_seconds"] == 0
    assert empty["totals"]["stt"] == []
    assert empty["totals"]["tts"] == []
    theirs = await usage_report(store, other_id, DAY1, DAY2, "day")
    assert theirs["totals"]["calls"] == 1
    assert theirs["totals"]["tts"] == [{"provider": "piper", "characters": 999}]


async def test_the_store_keeps_a_calls_speech_usage(store: Store) -> None:
    org = await seed_org(store)
    call = _call(org.id, _utc(DAY1, 9), timedelta(seconds=2), speech=[_tts("piper", 12)])
    await insert_call(store, call)
    stored = await store.get_call(org.id, call.id)
    assert stored is not None
    assert stored.speech_usage == [_tts("piper", 12)]
    assert call_usage(stored) == {
        "connected_seconds": 2.0,
        "billable_seconds": 2,
        "stt": [],
        "tts": [{"provider": "piper", "characters": 12}],
    }


async def test_the_store_keeps_a_calls_provider_switches(store: Store) -> None:
    org = await seed_org(store)
    call = _call(org.id, _utc(DAY1, 9), timedelta(seconds=2))
    await insert_call(store, call)
    before = await store.get_call(org.id, call.id)
    assert before is not None
    assert before.provider_switches is None  # not recorded
    async with store.transaction() as tx:
        found = await tx.get_call_for_update(call.id)
        assert found is not None
        found.provider_switches = 3
        await tx.update_call(found)
    stored = await store.get_call(org.id, call.id)
    assert stored is not None
    assert stored.provider_switches == 3


async def test_the_store_keeps_a_calls_consent_outcome(store: Store) -> None:
    org = await seed_org(store)
    call = _call(org.id, _utc(DAY1, 9), timedelta(seconds=2))
    await insert_call(store, call)
    before = await store.get_call(org.id, call.id)
    assert before is not None
    assert before.consent is None  # no consent plan
    outcome: dict[str, JsonValue] = {
        "mode": "opt_out_keypad",
        "outcome": "refused",
        "at": "2026-03-01T09:00:03.000Z",
    }
    async with store.transaction() as tx:
        found = await tx.get_call_for_update(call.id)
        assert found is not None
        found.consent = outcome
        await tx.update_call(found)
    stored = await store.get_call(org.id, call.id)
    assert stored is not None
    assert stored.consent == outcome


def test_billable_seconds_round_up_per_started_second() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    assert billable_seconds(connected_ms(start, start)) == 0
    assert billable_seconds(connected_ms(start, start + timedelta(milliseconds=1))) == 1
    assert billable_seconds(connected_ms(start, start + timedelta(seconds=10))) == 10
    assert (
        billable_seconds(connected_ms(start, start + timedelta(seconds=10, microseconds=999))) == 10
    )
    assert billable_seconds(connected_ms(start, start + timedelta(milliseconds=10001))) == 11
    assert connected_ms(None, start) == 0


def test_speech_usage_counts_caller_seconds_and_spoken_characters() -> None:
    turns = [
        SpokenTurn("assistant", "Hello there.", 0.0, 1.0),
        SpokenTurn("user", "Hi", 1.5, 2.25),
        SpokenTurn("assistant", "Bye", 3.0, 3.4),
        SpokenTurn("user", "Bye now", 4.0, 5.0),
    ]
    assert speech_usage(turns, stt_provider="whisper", tts_provider="piper") == [
        {"kind": "stt", "provider": "whisper", "seconds": 1.75},
        {"kind": "tts", "provider": "piper", "characters": len("Hello there.") + len("Bye")},
    ]
    assert speech_usage(turns, stt_provider=None, tts_provider=None) == []


def test_a_call_that_switched_providers_counts_each_ones_own_use() -> None:
    turns = [
        SpokenTurn("assistant", "Hello there.", 0.0, 1.0),  # the engine's own voice
        SpokenTurn("user", "Hi", 1.5, 2.25, provider="deepgram"),
        SpokenTurn("assistant", "One moment.", 3.0, 3.4, provider="elevenlabs"),
        SpokenTurn("user", "Bye now", 4.0, 5.0, provider="whisper"),  # its fallback heard it
        SpokenTurn("assistant", "Goodbye.", 5.5, 6.0, provider="piper"),  # its fallback spoke
    ]
    usage = speech_usage(turns, stt_provider="deepgram", tts_provider="elevenlabs")
    assert usage == [
        {"kind": "stt", "provider": "deepgram", "seconds": 0.75},
        {"kind": "stt", "provider": "whisper", "seconds": 1.0},
        {"kind": "tts", "provider": "elevenlabs", "characters": len("Hello there.One moment.")},
        {"kind": "tts", "provider": "piper", "characters": len("Goodbye.")},
    ]
    start = datetime(2026, 3, 1, tzinfo=UTC)
    call = Call("c1", "o1", Direction.OUTBOUND, CallStatus.ENDED, None, None, speech_usage=usage)
    call.started_at, call.ended_at = start, start + timedelta(seconds=6)
    assert call_usage(call)["stt"] == [
        {"provider": "deepgram", "audio_seconds": 0.75},
        {"provider": "whisper", "audio_seconds": 1.0},
    ]
    assert call_usage(call)["tts"] == [
        {"provider": "elevenlabs", "characters": 23},
        {"provider": "piper", "characters": 8},
    ]
