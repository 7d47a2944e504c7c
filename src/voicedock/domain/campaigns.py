"""Campaigns: a batch of contacts, each dialed as an ordinary outbound call (docs/campaigns.md).

A campaign is ``running``, ``paused``, ``cancelled`` or ``finished``. A contact is ``pending``
(waiting to be dialed at ``next_attempt_at``: for its first attempt, a retry, its calling window
or a free channel), ``calling`` (``call_id`` is in progress) or ``done`` (``outcome`` is final).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from voicedock.domain.assistant_config import AssistantConfig
from voicedock.domain.json import JsonValue
from voicedock.domain.records import utcnow
from voicedock.domain.squads import CallSquad
from voicedock.domain.traffic_split import TrafficShare


class CampaignStatus(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    FINISHED = "finished"

    @property
    def terminal(self) -> bool:
        return self in (CampaignStatus.CANCELLED, CampaignStatus.FINISHED)


class ContactState(enum.StrEnum):
    PENDING = "pending"
    CALLING = "calling"
    DONE = "done"


# Final outcomes besides a call's error (busy, no-answer, rejected, ...): the call was answered,
# the number is on the organization's do-not-call list, the campaign was cancelled first.
ANSWERED = "answered"
DO_NOT_CALL = "do-not-call"
CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class CallingWindow:
    """When contacts may be called, in each contact's time zone: ``days`` are ISO weekdays
    (1 = Monday), ``start``/``end`` minutes after midnight (``end`` excluded)."""

    days: frozenset[int]
    start: int
    end: int


# Daily hours "HH:MM-HH:MM" (24-hour, the end excluded; an end before the start spans
# midnight): the calling hours of calls/compliance/, the operator's and an organization's.
_HHMM = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"
HOURS_PATTERN = f"{_HHMM}-{_HHMM}"
EVERY_DAY = frozenset(range(1, 8))


def daily_window(hours: str) -> CallingWindow:
    """``HH:MM-HH:MM`` (``HOURS_PATTERN``, already matched) as a window of every day;
    ``ValueError`` when it starts and ends at the same time (no time to call)."""
    start, end = (int(t[:2]) * 60 + int(t[3:]) for t in hours.split("-"))
    if start == end:
        raise ValueError("the hours must not start and end at the same time")
    return CallingWindow(days=EVERY_DAY, start=start, end=end)


def is_open(window: CallingWindow, tz: ZoneInfo, now: datetime) -> bool:
    local = now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    if window.start < window.end:
        return local.isoweekday() in window.days and window.start <= minute < window.end
    # Spans midnight: the evening of a listed day, or the morning after one.
    if minute >= window.start:
        return local.isoweekday() in window.days
    yesterday = (local - timedelta(days=1)).isoweekday()
    return minute < window.end and yesterday in window.days


def next_opening(window: CallingWindow, tz: ZoneInfo, now: datetime) -> datetime:
    """``now`` when the window is open, else when it next opens (UTC)."""
    if is_open(window, tz, now):
        return now
    local_day = now.astimezone(tz).date()
    for offset in range(8):
        day = local_day + timedelta(days=offset)
        if day.isoweekday() not in window.days:
            continue
        opening = datetime.combine(
            day, time(window.start // 60, window.start % 60), tzinfo=tz
        ).astimezone(UTC)
        if opening > now:
            return opening
    raise AssertionError("a window with at least one day opens within a week")


@dataclass(frozen=True, slots=True)
class RetryRule:
    """For one outcome: up to ``max_attempts`` calls in all, ``backoff_seconds`` apart."""

    max_attempts: int
    backoff_seconds: int


@dataclass(slots=True)
class Campaign:
    id: str
    organization_id: str
    name: str
    status: CampaignStatus
    assistant_id: str | None
    agent_name: str | None
    business_name: str | None
    assistant_config: AssistantConfig  # resolved snapshot; placeholders filled per contact
    context: str | None
    number_ids: list[str]  # caller numbers; empty: the organization's pool
    max_concurrent: int  # calls of this campaign at once (0: no limit of its own)
    ring_timeout_seconds: int
    calling_window: (
        dict[str, JsonValue] | None
    )  # {"days": [1..7], "start": "09:00", "end": "17:00"}
    timezone: str  # contacts without one are called in this one
    retries: dict[str, JsonValue]  # outcome -> {"max_attempts": n, "backoff_seconds": s}
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # The squad its calls are placed with, as resolved when it was created (None: its one
    # assistant above); the assistant above is the squad's first member.
    squad: CallSquad | None = None
    seq: int = 0
    assistant_version: int | None = None  # the saved assistant's version its calls run
    # Its calls split between versions of its assistant by the contact's number (A/B), each
    # version resolved when it was created; None: every call the snapshot above.
    split: list[CampaignVersion] | None = None


class CampaignVersion(TrafficShare, frozen=True, kw_only=True):
    """A version of a campaign's assistant its calls are split to: its share, and its
    snapshot as the campaign was created."""

    agent_name: str | None
    business_name: str | None
    assistant_config: AssistantConfig


@dataclass(slots=True)
class CampaignContact:
    id: str
    campaign_id: str
    destination: str  # E.164
    name: str | None
    timezone: str | None
    variables: dict[str, str]
    state: ContactState = ContactState.PENDING
    outcome: str | None = None
    attempts: int = 0
    next_attempt_at: datetime = field(default_factory=utcnow)
    call_id: str | None = None
    updated_at: datetime = field(default_factory=utcnow)
    seq: int = 0


@dataclass(frozen=True, slots=True)
class CampaignProgress:
    """Contacts by state, and the done ones by outcome."""

    total: int
    by_state: dict[str, int]
    by_outcome: dict[str, int]
