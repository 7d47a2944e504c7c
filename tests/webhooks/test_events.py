from __future__ import annotations

import enum
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from voicedock.domain.timestamps import iso
from voicedock.webhooks import events

pytestmark = pytest.mark.unit

AT = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)


class Status(enum.StrEnum):
    ENDED = "ended"


def call_record(**overrides: object) -> dict[str, object]:
    record: dict[str, object] = {
        "id": "call-1",
        "organization_id": "org-1",
        "status": Status.ENDED,
        "direction": "outbound",
        "end_reason": "customer-ended-call",
        "caller_phone": "+31612345678",
        "assistant_phone": "+31850000000",
        "started_at": AT,
        "ended_at": AT + timedelta(seconds=61.6),
        "duration_seconds": None,
        "summary": "Booked a table",
        "analysis_result": {"sentiment": 8, "at": AT},
        "assistant_config": {"llm_config": {"api_key": "sk-secret"}},
        "pbx_call_ref": "PJSIP/trunk-0001",
        "transferred_to": None,
    }
    record.update(overrides)
    return record


def test_envelope_shape_and_timestamp_format() -> None:
    payload = events.status_update("call-1", "in-progress", at=AT, previous_status="connecting")
    assert payload == {
        "type": "status-update",
        "call_id": "call-1",
        "timestamp": "2026-03-01T10:00:00.123Z",
        "data": {"status": "in-progress", "previous_status": "connecting"},
    }


def test_timestamps_are_converted_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2026, 3, 1, 12, 0, tzinfo=plus_two)
    assert iso(moment) == "2026-03-01T10:00:00.000Z"


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        events.status_update("call-1", "ended", at=datetime(2026, 1, 1))


def test_missing_call_id_is_refused() -> None:
    with pytest.raises(ValueError, match="call_id"):
        events.status_update("", "ended", at=AT)


def test_status_update_carries_end_reason_and_error_when_given() -> None:
    payload = events.status_update("c", "failed", at=AT, end_reason="pbx-restart", error="boom")
    assert payload["data"]["end_reason"] == "pbx-restart"
    assert payload["data"]["error"] == "boom"


def test_transcript_event() -> None:
    payload = events.transcript("c", "user", "hello", at=AT, is_final=False)
    assert payload["type"] == "transcript"
    assert payload["data"] == {"role": "user", "content": "hello", "is_final": False}


def test_transfer_update_event() -> None:
    payload = events.transfer_update(
        "c", "failed", at=AT, destination="+31201234567", mode="blind", error="busy"
    )
    assert payload["type"] == "transfer-update"
    assert payload["data"] == {
        "status": "failed",
        "destination": "+31201234567",
        "mode": "blind",
        "error": "busy",
    }


def test_end_of_call_report_contains_the_final_record() -> None:
    messages = [
        {"role": "assistant", "content": "Hi", "started_at": AT, "seq": 1, "call_id": "call-1"},
        {"role": "user", "content": "Table for two", "interrupted": False},
    ]
    payload = events.end_of_call_report(call_record(), messages, at=AT)
    data = payload["data"]
    assert payload["type"] == "end-of-call-report"
    assert payload["call_id"] == "call-1"
    assert data["status"] == "ended"
    assert data["end_reason"] == "customer-ended-call"
    assert data["duration_seconds"] == 62
    assert data["started_at"] == "2026-03-01T10:00:00.123Z"
    assert data["analysis_result"] == {"sentiment": 8, "at": "2026-03-01T10:00:00.123Z"}
    assert data["messages"] == [
        {"role": "assistant", "content": "Hi", "started_at": "2026-03-01T10:00:00.123Z"},
        {"role": "user", "content": "Table for two", "interrupted": False},
    ]
    assert data["transfer"] is None


def test_end_of_call_report_never_copies_internal_fields() -> None:
    payload = events.end_of_call_report(call_record(), [], at=AT)
    encoded = events.encode_payload(payload).decode()
    for internal in ("sk-secret", "assistant_config", "pbx_call_ref", "organization_id"):
        assert internal not in encoded


def test_end_of_call_report_uses_recorded_duration_and_transfer_details() -> None:
    record = call_record(
        duration_seconds=30,
        transferred_to="+31201234567",
        transferred_at=AT + timedelta(seconds=20),
    )
    data = events.end_of_call_report(record, [], at=AT)["data"]
    assert data["duration_seconds"] == 30
    assert data["transfer"] == {
        "destination": "+31201234567",
        "transferred_at": "2026-03-01T10:00:20.123Z",
    }


def test_end_of_call_report_without_answer_has_no_duration() -> None:
    record = call_record(started_at=None, status="failed", error="no answer")
    data = events.end_of_call_report(record, [], at=AT)["data"]
    assert data["duration_seconds"] is None
    assert data["error"] == "no answer"


def test_end_of_call_report_needs_an_id() -> None:
    with pytest.raises(ValueError, match="no id"):
        events.end_of_call_report({"status": "ended"}, [], at=AT)


def test_encode_payload_is_compact_utf8_json_that_round_trips() -> None:
    payload = events.transcript("c", "user", "Grüß dich", at=AT)
    body = events.encode_payload(payload)
    assert b", " not in body
    assert b": " not in body
    assert "Grüß".encode() in body
    assert json.loads(body) == payload


def test_encode_payload_refuses_nan() -> None:
    with pytest.raises(ValueError, match="JSON"):
        events.encode_payload({"x": float("nan")})
