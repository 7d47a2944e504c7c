"""Calling windows on a virtual clock, retry rules, placeholders and contact parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fakes.requests import campaign_request
from voicedock.api.models.campaigns import csv_contacts
from voicedock.calls.assistants.placeholders import fill, fill_config
from voicedock.calls.campaigns.retries import outcome_of, retry_at
from voicedock.calls.campaigns.window import is_open, next_opening, window_of, zone
from voicedock.domain.assistant_config import AssistantConfig
from voicedock.domain.json import JsonObject
from voicedock.domain.records import Call, CallStatus, Direction
from voicedock.errors import BadRequest

pytestmark = pytest.mark.unit

CAMPAIGN = {"name": "Rules", "assistant": {}, "contacts": [{"destination": "+31612345678"}]}


def parse_window(window: object) -> JsonObject:
    """A campaign's calling window as the API reads it."""
    stored = campaign_request({**CAMPAIGN, "calling_window": window}).calling_window
    assert stored is not None
    return stored


def parse_retries(rules: object) -> JsonObject:
    """A campaign's retry rules as the API reads them."""
    return campaign_request({**CAMPAIGN, "retries": rules}).retries


AMSTERDAM = zone("Europe/Amsterdam")
NEW_YORK = zone("America/New_York")
# Weekdays 09:00-17:00.
OFFICE = window_of(
    parse_window({"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"})
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_window_is_applied_in_the_contacts_time_zone() -> None:
    # Monday 2026-11-23 08:30 UTC: 09:30 in Amsterdam (open), 03:30 in New York (closed).
    now = utc(2026, 11, 23, 8, 30)
    assert is_open(OFFICE, AMSTERDAM, now)
    assert not is_open(OFFICE, NEW_YORK, now)
    assert next_opening(OFFICE, AMSTERDAM, now) == now
    assert next_opening(OFFICE, NEW_YORK, now) == utc(2026, 11, 23, 14, 0)  # 09:00 EST


def test_window_end_is_excluded_and_the_weekend_is_skipped() -> None:
    friday_close = utc(2026, 11, 27, 16, 0)  # 17:00 in Amsterdam
    assert not is_open(OFFICE, AMSTERDAM, friday_close)
    assert is_open(OFFICE, AMSTERDAM, friday_close - timedelta(minutes=1))
    assert next_opening(OFFICE, AMSTERDAM, friday_close) == utc(2026, 11, 30, 8, 0)


def test_window_across_midnight_and_daylight_saving() -> None:
    night = window_of(parse_window({"days": [6], "start": "22:00", "end": "02:00"}))
    assert is_open(night, AMSTERDAM, utc(2026, 11, 28, 21, 30))  # Saturday 22:30
    assert is_open(night, AMSTERDAM, utc(2026, 11, 29, 0, 30))  # Sunday 01:30, Saturday's night
    assert not is_open(night, AMSTERDAM, utc(2026, 11, 29, 1, 30))  # Sunday 02:30
    # The opening after the clocks go forward (2026-03-29 in Europe) is 09:00 CEST = 07:00 UTC.
    assert next_opening(OFFICE, AMSTERDAM, utc(2026, 3, 29, 12, 0)) == utc(2026, 3, 30, 7, 0)


@pytest.mark.parametrize(
    "window",
    [
        {"days": [], "start": "09:00", "end": "17:00"},
        {"days": [0], "start": "09:00", "end": "17:00"},
        {"days": [1], "start": "9:00", "end": "17:00"},
        {"days": [1], "start": "09:00", "end": "24:00"},
        {"days": [1], "start": "09:00", "end": "17:00", "tz": "UTC"},
    ],
)
def test_bad_windows_are_refused(window: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        parse_window(window)


def test_a_window_of_no_time_is_a_bad_request() -> None:
    """start and end are each valid (the schema's part); equal, they leave no time: the
    request's own content, 400 (it was 422)."""
    with pytest.raises(BadRequest, match="must differ") as refused:
        parse_window({"days": [1], "start": "09:00", "end": "09:00"})
    assert refused.value.error == "Empty calling window"


def test_retries_per_outcome() -> None:
    rules = parse_retries({"busy": {"max_attempts": 3, "backoff_seconds": 60}})
    now = utc(2026, 11, 23, 9, 0)
    assert retry_at(rules, "busy", 1, now) == now + timedelta(seconds=60)
    assert retry_at(rules, "busy", 2, now) == now + timedelta(seconds=60)
    assert retry_at(rules, "busy", 3, now) is None  # the third attempt was the last
    assert retry_at(rules, "no-answer", 1, now) is None  # no rule: final
    assert retry_at(rules, "answered", 1, now) is None
    with pytest.raises(BadRequest):
        parse_retries({"busy": {"max_attempts": 0}})
    with pytest.raises(BadRequest):
        parse_retries({"answered": {"max_attempts": 2}})


def test_outcome_of_a_call() -> None:
    call = Call("c", "o", Direction.OUTBOUND, CallStatus.FAILED, "+31612345678", "+31850835037")
    call.error = "no-answer"
    assert outcome_of(call) == "no-answer"
    call.status, call.error, call.started_at = CallStatus.ENDED, None, utc(2026, 1, 1)
    assert outcome_of(call) == "answered"


def test_placeholders() -> None:
    variables = {"name": "Ann", "amount": "12.50"}
    assert fill("Hi {{name}}, you owe {{ amount }} ({{unknown}})", variables) == (
        "Hi Ann, you owe 12.50 ({{unknown}})"
    )
    config = AssistantConfig(
        first_message="Hi {{name}}",
        system_prompt="Owes {{amount}}",
        voicemail_message="{{name}}, please call us back.",
        record=True,
    )
    assert fill_config(config, variables) == AssistantConfig(
        first_message="Hi Ann",
        system_prompt="Owes 12.50",
        voicemail_message="Ann, please call us back.",
        record=True,
    )
    assert config.first_message == "Hi {{name}}"  # the campaign's copy is untouched


def test_contacts_csv() -> None:
    parsed = csv_contacts(
        "destination,name,timezone,plan\n+31612345678,Ann,Europe/Amsterdam,gold\n+31612345679,,,\n"
    )
    assert parsed[0].destination == "+31612345678"
    assert parsed[0].timezone == "Europe/Amsterdam"
    assert dict(parsed[0].variables) == {"name": "Ann", "plan": "gold"}
    assert dict(parsed[1].variables) == {}
    with pytest.raises(BadRequest, match="CSV line 2"):
        csv_contacts("destination\n0612345678\n")
    with pytest.raises(BadRequest, match="header"):
        csv_contacts("number\n+31612345678\n")


def test_voicemail_is_an_outcome_of_its_own() -> None:
    call = Call("c", "o", Direction.OUTBOUND, CallStatus.ENDED, "+31612345678", "+31850835037")
    call.started_at, call.end_reason = utc(2026, 1, 1), "voicemail"
    assert outcome_of(call) == "voicemail"
    rules = parse_retries({"voicemail": {"max_attempts": 2, "backoff_seconds": 3600}})
    assert retry_at(rules, "voicemail", 1, utc(2026, 1, 1)) == utc(2026, 1, 1, 1, 0)
