"""The rating rules: billing increments, the minimum charge, the most specific rate, speech
passed through, rounding half-up to the currency's minor unit once per call."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import msgspec
import pytest

from voicedock.domain.billing import (
    CallUse,
    Rate,
    RateCard,
    RateCardError,
    SpeechPrices,
    billed_seconds,
    destination,
    month_bounds,
    parse_terms,
    rate,
    rounded,
)

pytestmark = pytest.mark.unit

DE_MOBILE = "+4915123456789"
DE_FIXED = "+493012345678"
US_TOLL_FREE = "+18002530000"
RATES = [
    Rate(per_minute="0.01"),
    Rate(direction="outbound", per_minute="0.02"),
    Rate(direction="outbound", country="DE", per_minute="0.03"),
    Rate(number_type="mobile", per_minute="0.04"),
    Rate(country="DE", number_type="mobile", per_minute="0.05"),
    Rate(direction="inbound", number_type="toll_free", per_minute="0.06"),
]


def card(**terms: object) -> RateCard:
    given = {"currency": "EUR", "rates": RATES, **terms}
    checked = parse_terms(msgspec.to_builtins(given))
    return RateCard("rc_1", "org_1", 3, checked, datetime(2026, 11, 1, tzinfo=UTC))


def cost_of(use: CallUse, **terms: object) -> str:
    return rate(card(**terms), use).amount


@pytest.mark.parametrize(
    ("connected_ms", "increment", "billed"),
    [
        (0, (60, 60), 0),
        (1, (60, 60), 60),
        (60_000, (60, 60), 60),
        (60_001, (60, 60), 120),
        (1, (1, 1), 1),
        (10_000, (1, 1), 10),
        (10_001, (1, 1), 11),
        (29_000, (30, 6), 30),
        (30_001, (30, 6), 36),
        (36_000, (30, 6), 36),
        (36_001, (30, 6), 42),
    ],
)
def test_billing_increments(connected_ms: int, increment: tuple[int, int], billed: int) -> None:
    assert billed_seconds(connected_ms, *increment) == billed


def test_the_most_specific_rate_wins_a_country_before_a_number_type() -> None:
    def per_minute(direction: str, number: str) -> str:
        return rate(card(), CallUse(direction, number, 60_000)).per_minute

    assert per_minute("outbound", DE_MOBILE) == "0.05"  # country and type
    assert per_minute("outbound", DE_FIXED) == "0.03"  # direction and country
    assert per_minute("inbound", DE_FIXED) == "0.01"  # nothing named matches: catch-all
    assert per_minute("outbound", US_TOLL_FREE) == "0.02"
    assert per_minute("inbound", US_TOLL_FREE) == "0.06"
    assert per_minute("inbound", "+12025550123") == "0.01"  # a US fixed-line-or-mobile
    assert per_minute("outbound", "1001") == "0.02"  # no valid number: ZZ, unknown


def test_a_call_is_priced_by_billed_minutes_fees_and_speech() -> None:
    use = CallUse("outbound", DE_MOBILE, 61_000, stt_seconds=30.0, tts_characters=1500)
    cost = rate(
        card(
            increment="30/6",
            ai_fee_per_minute="0.10",
            speech=SpeechPrices(stt_per_minute="0.006", tts_per_thousand_characters="0.015"),
        ),
        use,
    )
    # 66 s billed: 1.1 min x (0.05 + 0.10) = 0.165; STT 0.5 min x 0.006 = 0.003;
    # TTS 1.5 x 0.015 = 0.0225; 0.1905 -> 0.19
    assert cost.billed_seconds == 66
    assert cost.amount == "0.19"
    assert (cost.currency, cost.rate_card_id, cost.rate_card_version) == ("EUR", "rc_1", 3)
    assert (cost.direction, cost.country, cost.number_type) == ("outbound", "DE", "mobile")


def test_the_minimum_charge_of_an_answered_call() -> None:
    assert cost_of(CallUse("outbound", DE_FIXED, 1_000), minimum_charge="0.05") == "0.05"
    assert cost_of(CallUse("outbound", DE_FIXED, 0), minimum_charge="0.05") == "0.05"
    assert cost_of(CallUse("outbound", DE_FIXED, 120_000), minimum_charge="0.05") == "0.06"


def test_rounding_is_half_up_to_the_minor_unit_once_per_call() -> None:
    # 1 s at 0.3 / min: 0.005 -> 0.01 half-up (banker's rounding would give 0.00)
    assert (
        cost_of(
            CallUse("outbound", DE_FIXED, 1_000), increment="1/1", rates=[Rate(per_minute="0.3")]
        )
        == "0.01"
    )
    assert rounded(Decimal("2.5"), "JPY") == Decimal(3)
    assert rounded(Decimal("0.0125"), "KWD") == Decimal("0.013")
    assert (
        cost_of(
            CallUse("outbound", DE_FIXED, 60_000), currency="JPY", rates=[Rate(per_minute="2.5")]
        )
        == "3"
    )


@pytest.mark.parametrize(
    ("terms", "named"),
    [
        ({"currency": "euro"}, "currency"),
        ({"increment": "0/60"}, "increment"),
        ({"minimum_charge": "-1"}, "minimum_charge"),
        ({"rates": [Rate(per_minute="1e3")]}, "rates[0].per_minute"),
        ({"rates": [Rate(per_minute="1"), Rate(country="XX", per_minute="1")]}, "rates[1].country"),
        ({"rates": [Rate(per_minute="1"), Rate(number_type="cell", per_minute="1")]}, "rates[1]"),
        ({"rates": [Rate(per_minute="1"), Rate(per_minute="2")]}, "rates[1] repeats"),
        ({"rates": [Rate(direction="inbound", per_minute="1")]}, "outbound"),
        ({"rates": []}, "rates"),
    ],
)
def test_a_card_that_cannot_be_is_refused_naming_the_field(
    terms: dict[str, object], named: str
) -> None:
    with pytest.raises(RateCardError, match=named.replace("[", r"\[").replace("]", r"\]")):
        card(**terms)


def test_destinations_and_months() -> None:
    assert destination("+18762345678")[0] == "JM"  # +1 876: Jamaica, not the US
    assert destination(None) == ("ZZ", "unknown")
    start, end = month_bounds("2026-12")
    assert (start.isoformat(), end.isoformat()) == (
        "2026-12-01T00:00:00+00:00",
        "2027-01-01T00:00:00+00:00",
    )
    for month in ("2026-13", "0000-01", "9999-12", "2026-1"):
        with pytest.raises(RateCardError):
            month_bounds(month)
