"""What every automated outbound call passes besides the destination policy
(``[compliance]``): the operator's do-not-call entries and the calling hours in the callee's
local time, per country (``calls/compliance/`` applies them; docs/compliance.md)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from voicedock.config.table_types import Table, matching
from voicedock.domain.campaigns import HOURS_PATTERN, daily_window
from voicedock.domain.do_not_call import EntryRefused, entry_of
from voicedock.domain.number_plan import is_region
from voicedock.errors import ConfigError

# Local hours in which calls may be placed: "08:00-21:00" (the end excluded; an end before the
# start spans midnight).
Hours = Annotated[
    str, matching(HOURS_PATTERN, "must be HH:MM-HH:MM (24-hour, the callee's local time)")
]
# The hours applied unless the operator lists countries of their own: the United States'
# federal telemarketing hours (8 a.m. to 9 p.m. at the called party's location).
DEFAULT_COUNTRY_HOURS = {"US": "08:00-21:00"}
# Entries an organization's own do-not-call list holds at most.
DEFAULT_MAX_ORGANIZATION_ENTRIES = 100_000


class CallingHoursSettings(Table):
    """[compliance.calling_hours]: when automated calls may reach a number, in its local time
    (the time zones libphonenumber gives the number; a number of several zones must be within
    the hours in each)."""

    # Countries (ISO 3166-1, as policy.allowed_countries) and their hours. Replaces the
    # built-in list when set (keep "US" in it to keep those hours); {} : no country's.
    countries: dict[str, Hours] = msgspec.field(default_factory=lambda: dict(DEFAULT_COUNTRY_HOURS))
    # The hours of every country not listed; left out: any time.
    default: Hours | None = None

    def check(self) -> None:
        for country, hours in self.countries.items():
            key = f"compliance.calling_hours.countries.{country}"
            if not is_region(country):
                raise ConfigError(key, 'an ISO 3166-1 country code in capitals ("US")')
            _check_span(key, hours)
        if self.default is not None:
            _check_span("compliance.calling_hours.default", self.default)


class ComplianceSettings(Table):
    """[compliance]: the operator's do-not-call list and calling hours (docs/compliance.md)."""

    # Numbers (E.164) and ranges ("+1900*") no organization's call may reach, on top of the
    # entries of `voicedock dnc` and each organization's own list.
    do_not_call: list[str] = msgspec.field(default_factory=list)
    calling_hours: CallingHoursSettings = msgspec.field(default_factory=CallingHoursSettings)
    # Entries an organization's own list may hold (POST /do-not-call, its CSV import).
    max_organization_entries: Annotated[int, Meta(ge=1, le=10_000_000)] = (
        DEFAULT_MAX_ORGANIZATION_ENTRIES
    )

    def check(self) -> None:
        for i, entry in enumerate(self.do_not_call):
            try:
                self.do_not_call[i] = entry_of(entry)
            except EntryRefused as refused:
                raise ConfigError(f"compliance.do_not_call[{i}]", str(refused)) from None
        self.calling_hours.check()


def _check_span(key: str, hours: str) -> None:
    try:
        daily_window(hours)
    except ValueError as exc:
        raise ConfigError(key, str(exc)) from None


__all__ = ["DEFAULT_COUNTRY_HOURS", "CallingHoursSettings", "ComplianceSettings", "Hours"]
