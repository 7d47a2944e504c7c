"""``GET /usage`` and a call's ``usage`` object: calls, connected and billable time and
speech-provider use (the numbers' definitions are domain/usage.py's)."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from msgspec import UNSET, Meta, UnsetType

from voicedock.api.models.base import Body, Reply
from voicedock.api.models.field_types import IncludeTests
from voicedock.api.models.operations import Schema, query_operation, with_csv
from voicedock.domain.records import Direction
from voicedock.domain.usage import GROUP_BY, MAX_RANGE_DAYS

CSV_COLUMNS = (
    "key",
    "kind",
    "direction",
    "status",
    "end_reason",
    "provider",
    "calls",
    "connected_seconds",
    "billable_seconds",
    "audio_seconds",
    "characters",
    "currency",
    "amount",
    "value",
)
GroupBy = Literal["day", "assistant", "number", "campaign", "assistant_version"]
assert get_args(GroupBy) == GROUP_BY
Date = Annotated[
    str, Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", extra_json_schema={"format": "date"})
]
Seconds = Annotated[float, Meta(ge=0)]
Count = Annotated[int, Meta(ge=0)]
ConnectedSeconds = Annotated[
    float, Meta(ge=0, description="From the answer to the end, each truncated to the millisecond")
]
BillableSeconds = Annotated[
    int, Meta(ge=0, description="Connected time rounded up per started second (1/1 granularity)")
]


class SttUsage(Reply, kw_only=True):
    provider: Annotated[str, Meta(description="stt_config.provider")]
    audio_seconds: Annotated[
        float, Meta(ge=0, description="Seconds of caller audio transcribed (the caller's turns)")
    ]


class TtsUsage(Reply, kw_only=True):
    provider: Annotated[str, Meta(description="tts_config.provider")]
    characters: Annotated[
        int,
        Meta(
            ge=0,
            description="Characters the call spoke (as the transcript shows them; a synthesis "
            "served from the node's cache counts too)",
        ),
    ]


class MemberUsage(Reply, kw_only=True):
    member: Annotated[str, Meta(description="The squad's member (docs/squads.md)")]
    assistant_id: Annotated[str | None, Meta(description="Its saved assistant (null: inline)")]
    seconds: Annotated[
        float, Meta(ge=0, description="The connected seconds the member had the call")
    ]


class CallUsage(Reply, kw_only=True):
    connected_seconds: ConnectedSeconds
    billable_seconds: BillableSeconds
    stt: list[SttUsage]
    tts: list[TtsUsage]
    members: (
        Annotated[
            list[MemberUsage],
            Meta(
                description="A call placed with a squad: its connected seconds split between "
                "the members that had it, in that order."
            ),
        ]
        | UnsetType
    ) = UNSET


class UsageOutcome(Reply, kw_only=True):
    direction: Direction
    status: Annotated[str, Meta(description="The call's status as stored")]
    end_reason: Annotated[str | None, Meta(description="As stored")]
    calls: Count
    connected_seconds: ConnectedSeconds
    billable_seconds: BillableSeconds


class CostUsage(Reply, kw_only=True):
    currency: Annotated[str, Meta(description="ISO 4217, the rate card's")]
    amount: Annotated[
        str,
        Meta(
            pattern=r"^-?[0-9]+(\.[0-9]+)?$",
            description="The rated calls' costs summed (a decimal, to the currency's minor unit)",
        ),
    ]
    calls: Annotated[int, Meta(ge=0, description="The calls rated in this currency")]


class EvaluationUsage(Reply, kw_only=True):
    value: Annotated[
        str,
        Meta(
            description="A success evaluation the post-call analysis gave (its first 100 "
            "characters)"
        ),
    ]
    calls: Count


class UsageTotals(Reply, kw_only=True):
    calls: Count
    connected_seconds: ConnectedSeconds
    connected_minutes: Annotated[
        float, Meta(ge=0, description="connected_seconds / 60, 2 decimals")
    ]
    billable_seconds: BillableSeconds
    by_outcome: list[UsageOutcome]
    stt: list[SttUsage]
    tts: list[TtsUsage]
    cost: Annotated[
        list[CostUsage],
        Meta(description="What the rated calls cost, per currency (docs/billing.md)"),
    ]
    success_evaluations: Annotated[
        list[EvaluationUsage],
        Meta(
            description="The calls per success evaluation of their analysis (an analysis "
            "plan's success_evaluation_rubric), the 10 most frequent values"
        ),
    ]


class UsageGroup(UsageTotals, kw_only=True):
    key: Annotated[
        str | None,
        Meta(
            description="The UTC day (YYYY-MM-DD), or the assistant, number or campaign id, "
            "or (group_by=assistant_version) the assistant's id and the version its calls ran, "
            '"<id>@<version>"; null: the calls without one'
        ),
    ]
    assistant_seconds: (
        Annotated[
            float,
            Meta(
                ge=0,
                description="group_by=assistant: the connected seconds the assistant had: "
                "its calls' whole time, but of a call placed with a squad (docs/squads.md) "
                "each member's part under its own assistant (null key: members of a "
                "configuration of their own).",
            ),
        ]
        | UnsetType
    ) = UNSET


class UsageReport(Reply, kw_only=True):
    start_date: Date
    end_date: Date
    group_by: GroupBy
    groups: list[UsageGroup]
    totals: UsageTotals


class UsageQuery(Body, kw_only=True):
    """``GET /usage``'s query."""

    start_date: (
        Annotated[
            Date, Meta(description="First UTC day (calls created on it count); default: end_date")
        ]
        | UnsetType
    ) = UNSET
    end_date: (
        Annotated[
            Date,
            Meta(
                description="Last UTC day, included; default: today. At most "
                f"{MAX_RANGE_DAYS} days from start_date to end_date (else 400)."
            ),
        ]
        | UnsetType
    ) = UNSET
    group_by: GroupBy | UnsetType = UNSET
    include_tests: IncludeTests | UnsetType = UNSET
    format: (
        Annotated[
            Literal["json", "csv"],
            Meta(description="csv: the same numbers as CSV (also with Accept: text/csv)"),
        ]
        | UnsetType
    ) = UNSET


def _usage() -> Schema:
    rows = (
        'a row per group and outcome (kind "calls"), per group and speech provider (kinds '
        'stt, tts), per group and currency (kind "cost") and per group and success evaluation '
        '(kind "evaluation")'
    )
    summary = (
        "The organization's calls, connected and billable time and speech-provider use, per "
        "UTC day, assistant, number or campaign (JSON, or CSV with format=csv or "
        "Accept: text/csv)"
    )
    return with_csv(query_operation(summary, UsageReport, UsageQuery), CSV_COLUMNS, rows)


PATHS: dict[str, Schema] = {"/usage": {"get": _usage()}}
MODELS = (UsageReport, CallUsage, UsageQuery)
