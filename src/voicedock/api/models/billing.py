"""``/billing``: the organization's rate card (the operator's: read-only here), its monthly
statements (JSON, CSV, PDF), and a call's ``cost`` (docs/billing.md). Money is a decimal
string, never a JSON number."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from voicedock.api.models.base import Body, Reply, of_record
from voicedock.api.models.field_types import Time
from voicedock.api.models.operations import (
    Schema,
    operation,
    query_operation,
    with_csv,
)
from voicedock.domain.billing import CallCost, RateCard, RateCardTerms

Amount = Annotated[
    str,
    Meta(
        pattern=r"^[0-9]+(\.[0-9]+)?$",
        description="A decimal string in the currency (never a JSON number)",
        examples=["1.25"],
    ),
]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217")]
Month = Annotated[str, Meta(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="YYYY-MM (UTC)")]
CSV_COLUMNS = (
    "day",
    "direction",
    "country",
    "number_type",
    "currency",
    "calls",
    "billed_seconds",
    "billed_minutes",
    "amount",
)


class Cost(Reply, kw_only=True):
    """What the call cost by its organization's rate card, rated once when it ended."""

    amount: Annotated[Amount, Meta(description="Rounded half-up to the currency's minor unit")]
    currency: Currency
    billed_seconds: Annotated[
        int, Meta(ge=0, description="Connected time by the card's increment (60/60, 1/1...)")
    ]
    rate_card_id: str
    rate_card_version: Annotated[int, Meta(ge=1, description="The card version that priced it")]
    direction: Literal["inbound", "outbound"]
    country: Annotated[
        str,
        Meta(description="The far party's number's country (ISO 3166-1 alpha-2; ZZ: none)"),
    ]
    number_type: Annotated[str, Meta(description="Its type (libphonenumber's; unknown: none)")]
    per_minute: Annotated[Amount, Meta(description="The rate that matched, per minute")]

    @classmethod
    def of(cls, cost: CallCost | None) -> Cost | None:
        return None if cost is None else msgspec.convert(msgspec.to_builtins(cost), cls)


class RateCardReply(Reply, kw_only=True):
    """The rate card that prices the organization's calls: its own, else the operator's
    default."""

    id: str
    version: Annotated[int, Meta(ge=1, description="Each change is a new version")]
    scope: Annotated[
        Literal["organization", "default"],
        Meta(description="organization: its own card; default: the operator's default card"),
    ]
    created_at: Time
    terms: RateCardTerms

    @classmethod
    def of(cls, card: RateCard) -> RateCardReply:
        scope = "default" if card.organization_id is None else "organization"
        return of_record(cls, card, scope=scope)


class StatementLine(Reply, kw_only=True):
    """The calls of one UTC day to one destination (direction, country, number type)."""

    day: Annotated[str, Meta(description="YYYY-MM-DD (UTC), the day the calls were answered")]
    direction: Literal["inbound", "outbound"]
    country: str
    number_type: str
    currency: Currency
    calls: Annotated[int, Meta(ge=0)]
    billed_seconds: Annotated[int, Meta(ge=0)]
    billed_minutes: Annotated[Amount, Meta(description="billed_seconds / 60, 2 decimals")]
    amount: Annotated[Amount, Meta(description="The sum of the calls' costs")]


class StatementTotal(Reply, kw_only=True):
    """A statement's total in one currency: the sum of its lines, which is the sum of its
    calls' stored costs."""

    currency: Currency
    calls: Annotated[int, Meta(ge=0)]
    billed_seconds: Annotated[int, Meta(ge=0)]
    billed_minutes: Amount
    amount: Amount


class Statement(Reply, kw_only=True):
    organization: Annotated[str, Meta(description="The organization's display name")]
    month: Month
    lines: list[StatementLine]
    totals: Annotated[
        list[StatementTotal],
        Meta(description="One per currency the month's calls were priced in"),
    ]
    spending_limit: (
        Annotated[
            Amount | None,
            Meta(description="The operator's monthly spending limit (null: none)"),
        ]
        | UnsetType
    ) = UNSET


class StatementQuery(Body, kw_only=True):
    """``GET /billing/statements``'s query."""

    month: (
        Annotated[Month, Meta(description="The month (UTC); default: this month")] | UnsetType
    ) = UNSET
    format: (
        Annotated[
            Literal["json", "csv", "pdf"],
            Meta(description="csv: the lines as CSV; pdf: the statement as a PDF document"),
        ]
        | UnsetType
    ) = UNSET


def _statements() -> Schema:
    op = query_operation(
        "The organization's statement of a month: its rated calls per UTC day and destination "
        "(direction, country, number type) and the totals (JSON, CSV or PDF)",
        Statement,
        StatementQuery,
    )
    content = with_csv(op, CSV_COLUMNS, "a row per line")["responses"]["200"]["content"]
    content["application/pdf"] = {"schema": {"type": "string", "format": "binary"}}
    return op


PATHS: dict[str, Schema] = {
    "/billing/rate-card": {
        "get": operation(
            "The rate card that prices the organization's calls (the operator's: "
            "voicedock billing rate-cards); 404 when there is none",
            ("200", RateCardReply),
            errors="401 404",
        )
    },
    "/billing/statements": {"get": _statements()},
}
MODELS = (RateCardReply, Statement, StatementQuery, Cost)
