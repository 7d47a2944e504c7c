"""Calling hours read in a number's own time zones: per country with a default, the strictest
zone for a number spanning several, and the next moment a waiting call may go."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from voicedock.calls.compliance.calling_hours import CallingHours
from voicedock.config import CallingHoursSettings
from voicedock.errors import ConfigError

pytestmark = pytest.mark.unit

NEW_YORK = "+12125550101"
LOS_ANGELES = "+14155550100"
TOLL_FREE = "+18005550100"
AMSTERDAM = "+31201234567"


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, 15, hour, minute, tzinfo=UTC)  # winter: New York is UTC-5


def test_the_default_hours_are_the_us_ones() -> None:
    hours = CallingHours(CallingHoursSettings())
    assert hours.refusal(NEW_YORK, at(13, 0)) is None  # 08:00 in New York
    assert hours.refusal(NEW_YORK, at(12, 59)) is not None  # 07:59
    assert hours.refusal(NEW_YORK, at(1, 59)) is None  # 20:59
    refused = hours.refusal(NEW_YORK, at(2, 0))  # 21:00: the end is excluded
    assert refused is not None
    assert refused.status == 403
    assert refused.reason == "outside-calling-hours"
    assert "it is 21:00 in America/New_York" in refused.message
    for hour in range(24):  # every other country: any time
        assert hours.refusal(AMSTERDAM, at(hour)) is None


def test_a_number_is_judged_in_its_own_zone() -> None:
    hours = CallingHours(CallingHoursSettings())
    # 14:00 UTC: 09:00 in New York, 06:00 in Los Angeles.
    assert hours.refusal(NEW_YORK, at(14)) is None
    assert hours.refusal(LOS_ANGELES, at(14)) is not None
    assert hours.next_allowed(LOS_ANGELES, at(14)) == at(16)  # 08:00 there


def test_a_number_of_several_zones_takes_the_strictest() -> None:
    hours = CallingHours(CallingHoursSettings())
    local = hours.hours_of(TOLL_FREE)
    assert local is not None
    assert len(local.zones) > 3
    # 15:00 UTC is within the hours in New York, but 01:00 in Guam.
    assert hours.refusal(NEW_YORK, at(15)) is None
    assert hours.refusal(TOLL_FREE, at(15)) is not None
    opens = hours.next_allowed(TOLL_FREE, at(15))
    assert opens > at(15)
    assert hours.refusal(TOLL_FREE, opens) is None  # within the hours in every zone at once
    assert all(hours.refusal(TOLL_FREE, at(h)) is not None for h in range(15, 22))


def test_countries_and_a_default_of_the_operators() -> None:
    settings = CallingHoursSettings(countries={"NL": "09:00-18:00"}, default="10:00-16:00")
    settings.check()
    hours = CallingHours(settings)
    assert hours.refusal(AMSTERDAM, at(7, 59)) is not None  # 08:59 in Amsterdam
    assert hours.refusal(AMSTERDAM, at(8)) is None
    # The US is not listed any more: the default applies, in New York's time.
    assert hours.refusal(NEW_YORK, at(14)) is not None  # 09:00
    assert hours.refusal(NEW_YORK, at(15)) is None  # 10:00
    # No hours at all.
    anytime = CallingHours(CallingHoursSettings(countries={}))
    assert anytime.refusal(NEW_YORK, at(3)) is None
    assert anytime.next_allowed(NEW_YORK, at(3)) == at(3)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        (CallingHoursSettings(countries={"XX": "08:00-21:00"}), "countries.XX"),
        (CallingHoursSettings(countries={"US": "08:00-08:00"}), "countries.US"),
        (CallingHoursSettings(default="10:00-10:00"), "default"),
    ],
)
def test_bad_hours_stop_start_up(settings: CallingHoursSettings, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        settings.check()


def test_an_organizations_hours_narrow_never_widen() -> None:
    hours = CallingHours(CallingHoursSettings())
    # Narrower: 10:00-15:00 in New York refuses 09:00 there, which the operator allows.
    assert hours.refusal(NEW_YORK, at(14)) is None
    refused = hours.refusal(NEW_YORK, at(14), "10:00-15:00")
    assert refused is not None
    assert "10:00-15:00" in refused.message
    assert hours.next_allowed(NEW_YORK, at(14), "10:00-15:00") == at(15)
    # Wider: 06:00-23:00 does not allow 07:00 in New York (the operator's 08:00-21:00).
    assert hours.refusal(NEW_YORK, at(12), "06:00-23:00") is not None
    assert hours.next_allowed(NEW_YORK, at(12), "06:00-23:00") == at(13)
    # Where the operator sets none, the organization's still apply.
    assert hours.refusal(AMSTERDAM, at(3), "09:00-17:00") is not None
