"""Billing: the operator's rate cards, and what a call costs by one.

- **Money** is ``Decimal``, written as a decimal string (``"0.0125"``), never a float. A call's
  amount is rounded once, half-up, to its currency's minor unit (``minor_unit``: 2 unless
  ISO 4217 says otherwise); the prices on a card keep the digits the operator wrote.
- **A rate card** (``RateCardTerms``): a currency, per-minute prices by direction × destination
  country × number type (each may be ``*``), a billing increment (``"60/60"``: a first period,
  then periods of), a minimum charge per answered call, an AI fee per billed minute, and the
  speech the call used passed through at unit prices (STT per minute of caller audio
  transcribed, TTS per thousand characters spoken: ``domain/usage.py``'s counts). A card holds a
  catch-all rate (``*``/``*``) for each direction, so every call finds a price.
- **The most specific rate wins**: the one naming the most of direction, country and number
  type; between two naming as many, a country beats a number type, which beats a direction.
- **A call's cost** (``CallCost``): only an answered call is rated, once, when it ends, by the
  card its organization had then (its id and version kept with the cost): billed seconds from
  the connected milliseconds by the increment, the minutes' price, the AI fee, the speech, at
  least the minimum. The same inputs and the same card version give the same cost (``rate``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta

from voicedock.domain.number_plan import NUMBER_TYPES, classify, is_region

ANY: Final = "*"
UNKNOWN_COUNTRY = "ZZ"  # a destination with no valid number (an extension, a SIP URI)
UNKNOWN_TYPE = "unknown"
DIRECTIONS = ("inbound", "outbound")
MAX_RATES = 5_000
MAX_YEAR = 9998  # the month after a month must be a date too
# ISO 4217 currencies whose minor unit is not 2 (the rest: cents).
_MINOR_UNITS = {
    **dict.fromkeys(
        ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI"),
        0,
    ),
    **dict.fromkeys(("VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_PRICE = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,12})?$")
_INCREMENT = re.compile(r"^([1-9][0-9]{0,3})/([1-9][0-9]{0,3})$")
_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")

Price = Annotated[
    str,
    Meta(
        pattern=_PRICE.pattern,
        description="A non-negative decimal amount as a string (never a JSON number)",
        examples=["0.0125"],
    ),
]


class RateCardError(ValueError):
    """A rate card, a price or a month that cannot be: the message names the field."""


class Rate(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A per-minute price for calls of one direction, to one country, of one number type."""

    direction: Annotated[
        Literal["inbound", "outbound", "*"], Meta(description="inbound, outbound or *")
    ] = ANY
    country: Annotated[
        str,
        Meta(
            description="ISO 3166-1 alpha-2 (the number's own country: +1 876 is JM), 001 for "
            "global services (+800...), ZZ for no valid number, or *"
        ),
    ] = ANY
    number_type: Annotated[
        str,
        Meta(
            description="libphonenumber's type: mobile, fixed_line, fixed_line_or_mobile, "
            "toll_free, premium_rate, shared_cost, voip, personal_number, pager, uan, "
            "voicemail, unknown, or *"
        ),
    ] = ANY
    per_minute: Price

    @property
    def specificity(self) -> tuple[int, bool, bool, bool]:
        named = (self.country != ANY, self.number_type != ANY, self.direction != ANY)
        return (sum(named), *named)

    def matches(self, direction: str, country: str, number_type: str) -> bool:
        return (
            self.direction in (ANY, direction)
            and self.country in (ANY, country)
            and self.number_type in (ANY, number_type)
        )


class SpeechPrices(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The speech a call used, passed through at unit prices (``usage`` of the call)."""

    stt_per_minute: Annotated[
        Price, Meta(description="Per minute of caller audio transcribed (usage.stt)")
    ] = "0"
    tts_per_thousand_characters: Annotated[
        Price, Meta(description="Per 1,000 characters spoken (usage.tts)")
    ] = "0"


class RateCardTerms(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What the operator writes in a rate card's file (TOML or JSON)."""

    currency: Annotated[str, Meta(pattern=_CURRENCY.pattern, description="ISO 4217")]
    increment: Annotated[
        str,
        Meta(
            pattern=_INCREMENT.pattern,
            description="first period/next periods in seconds: 60/60, 1/1, 30/6",
        ),
    ] = "60/60"
    minimum_charge: Annotated[Price, Meta(description="The least an answered call costs")] = "0"
    ai_fee_per_minute: Annotated[
        Price, Meta(description="Per billed minute, beside the destination's price")
    ] = "0"
    speech: SpeechPrices = msgspec.field(default_factory=SpeechPrices)
    rates: list[Rate]


@dataclass(frozen=True, slots=True)
class RateCard:
    """A version of a rate card as stored: never changed; the operator's change is a new
    version. ``organization_id`` None: the default card, for organizations with none."""

    id: str
    organization_id: str | None
    version: int
    terms: RateCardTerms
    created_at: datetime


class CallCost(msgspec.Struct, kw_only=True, frozen=True):
    """What an answered call costs, rated once when it ended (stored with the call)."""

    amount: str  # a decimal string, rounded to the currency's minor unit
    currency: str
    billed_seconds: int
    rate_card_id: str
    rate_card_version: int
    direction: str
    country: str  # the far party's number's (UNKNOWN_COUNTRY: none valid)
    number_type: str
    per_minute: str  # the rate that matched


@dataclass(frozen=True, slots=True)
class CallUse:
    """What rating a call reads of its record: its direction, the far party's number, its
    connected milliseconds (``domain/usage.py``) and the speech it used."""

    direction: str
    far_number: str | None
    connected_ms: int
    stt_seconds: float = 0.0
    tts_characters: int = 0


@dataclass(frozen=True, slots=True)
class SpendAlert:
    """An organization's costs this month reached ``threshold`` percent of its monthly
    spending limit (its warning, or 100: the limit): announced once per month and threshold."""

    organization_id: str
    month: str  # YYYY-MM (UTC)
    threshold: int  # percent of the limit
    spent: str  # decimal strings, in ``currency``
    limit: str
    currency: str
    at: datetime


def decimal(value: str, field: str) -> Decimal:
    """A price or amount written as a decimal string."""
    if not _PRICE.match(value):
        raise RateCardError(f"{field} must be a non-negative decimal string such as 0.0125")
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise RateCardError(f"{field} is not a decimal") from None


def minor_unit(currency: str) -> int:
    """The digits after the point of ``currency``'s minor unit (ISO 4217)."""
    return _MINOR_UNITS.get(currency, 2)


def rounded(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half-up to ``currency``'s minor unit."""
    return amount.quantize(Decimal(1).scaleb(-minor_unit(currency)), rounding=ROUND_HALF_UP)


def increment(terms: RateCardTerms) -> tuple[int, int]:
    match = _INCREMENT.match(terms.increment)
    if match is None:
        raise RateCardError("increment must be first/next seconds, such as 60/60 or 30/6")
    return int(match[1]), int(match[2])


def billed_seconds(connected_ms: int, first: int, then: int) -> int:
    """The connected time billed by an increment: nothing connected is 0; else the first
    period whole, then whole periods of ``then`` seconds for what is left (``30/6``: 31 s is
    36 s)."""
    if connected_ms <= 0:
        return 0
    first_ms = first * 1000
    if connected_ms <= first_ms:
        return first
    then_ms = then * 1000
    return first + -(-(connected_ms - first_ms) // then_ms) * then


def parse_terms(document: object) -> RateCardTerms:
    """A rate card's terms from its decoded file (TOML or JSON), checked (``check_terms``)."""
    try:
        terms = msgspec.convert(document, RateCardTerms, strict=True)
    except msgspec.ValidationError as exc:
        raise RateCardError(str(exc)) from None
    return check_terms(terms)


def check_terms(terms: RateCardTerms) -> RateCardTerms:
    """``terms`` if every field can be (else ``RateCardError`` naming the field)."""
    if not _CURRENCY.match(terms.currency):
        raise RateCardError("currency must be an ISO 4217 code such as EUR")
    increment(terms)
    for value, field in (
        (terms.minimum_charge, "minimum_charge"),
        (terms.ai_fee_per_minute, "ai_fee_per_minute"),
        (terms.speech.stt_per_minute, "speech.stt_per_minute"),
        (terms.speech.tts_per_thousand_characters, "speech.tts_per_thousand_characters"),
    ):
        decimal(value, field)
    if not terms.rates or len(terms.rates) > MAX_RATES:
        raise RateCardError(f"rates must hold 1-{MAX_RATES} rates")
    seen: set[tuple[str, str, str]] = set()
    for i, rate in enumerate(terms.rates):
        where = f"rates[{i}]"
        decimal(rate.per_minute, f"{where}.per_minute")
        if rate.country not in (ANY, UNKNOWN_COUNTRY) and not is_region(rate.country):
            raise RateCardError(f"{where}.country must be an ISO 3166-1 alpha-2 code, 001 or *")
        if rate.number_type not in (ANY, UNKNOWN_TYPE) and rate.number_type not in NUMBER_TYPES:
            raise RateCardError(
                f"{where}.number_type must be * or one of {', '.join(NUMBER_TYPES)}, unknown"
            )
        key = (rate.direction, rate.country, rate.number_type)
        if key in seen:
            raise RateCardError(f"{where} repeats the rate for {'/'.join(key)}")
        seen.add(key)
    for direction in DIRECTIONS:
        if match_rate(terms.rates, direction, "\0", "\0") is None:
            raise RateCardError(
                f"rates must hold a catch-all rate for {direction} calls (country and "
                "number_type *)"
            )
    return terms


def match_rate(
    rates: Sequence[Rate], direction: str, country: str, number_type: str
) -> Rate | None:
    """The most specific of ``rates`` for a call (``None``: none matches)."""
    matching = [r for r in rates if r.matches(direction, country, number_type)]
    return max(matching, key=lambda r: r.specificity, default=None)


def destination(number: str | None) -> tuple[str, str]:
    """The country and number type of the far party's number (``classify``); a number that
    cannot exist (or none): ``ZZ``, ``unknown``."""
    info = None if not number else classify(number)
    if info is None:
        return UNKNOWN_COUNTRY, UNKNOWN_TYPE
    return info.region, info.type


def rate(card: RateCard, use: CallUse) -> CallCost:
    """What an answered call costs by ``card``."""
    terms = card.terms
    country, number_type = destination(use.far_number)
    matched = match_rate(terms.rates, use.direction, country, number_type)
    if matched is None:  # check_terms keeps a catch-all on every stored card
        raise RateCardError(f"rate card {card.id} has no rate for {use.direction} calls")
    first, then = increment(terms)
    seconds = billed_seconds(use.connected_ms, first, then)
    minutes = Decimal(seconds) / 60
    speech = terms.speech
    amount = (
        minutes * decimal(matched.per_minute, "per_minute")
        + minutes * decimal(terms.ai_fee_per_minute, "ai_fee_per_minute")
        + Decimal(str(use.stt_seconds)) / 60 * decimal(speech.stt_per_minute, "stt_per_minute")
        + Decimal(use.tts_characters)
        / 1000
        * decimal(speech.tts_per_thousand_characters, "tts_per_thousand_characters")
    )
    amount = max(amount, decimal(terms.minimum_charge, "minimum_charge"))
    return CallCost(
        amount=str(rounded(amount, terms.currency)),
        currency=terms.currency,
        billed_seconds=seconds,
        rate_card_id=card.id,
        rate_card_version=card.version,
        direction=use.direction,
        country=country,
        number_type=number_type,
        per_minute=matched.per_minute,
    )


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The first moment of ``YYYY-MM`` (UTC) and of the month after it."""
    match = _MONTH.match(month)
    if match is None or not 1 <= int(match[1]) <= MAX_YEAR:
        raise RateCardError(f"month must be YYYY-MM, from 0001-01 to {MAX_YEAR}-12")
    year, number = int(match[1]), int(match[2])
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end


def month_of(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


__all__ = [
    "ANY",
    "CallCost",
    "CallUse",
    "Rate",
    "RateCard",
    "RateCardError",
    "RateCardTerms",
    "SpeechPrices",
    "SpendAlert",
    "billed_seconds",
    "check_terms",
    "decimal",
    "destination",
    "match_rate",
    "minor_unit",
    "month_bounds",
    "month_of",
    "parse_terms",
    "rate",
    "rounded",
]
