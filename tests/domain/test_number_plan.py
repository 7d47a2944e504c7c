"""The numbering plan (libphonenumber's metadata): which numbers can exist, their country and
their type."""

from __future__ import annotations

import pytest

from voicedock.domain.number_plan import GLOBAL, NumberInfo, classify, is_region, local_prefix

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("number", "info"),
    [
        ("+31612345678", NumberInfo("NL", "mobile")),
        ("+31201234567", NumberInfo("NL", "fixed_line")),
        ("+31850835037", NumberInfo("NL", "voip")),  # the example's caller number
        ("+31880123456", NumberInfo("NL", "uan")),
        ("+319001234567", NumberInfo("NL", "premium_rate")),
        ("+12125550101", NumberInfo("US", "fixed_line_or_mobile")),
        ("+18762101234", NumberInfo("JM", "mobile")),  # +1, but Jamaica
        ("+18092345678", NumberInfo("DO", "fixed_line_or_mobile")),
        ("+16492311234", NumberInfo("TC", "mobile")),
        ("+12684641234", NumberInfo("AG", "mobile")),
        ("+441534123456", NumberInfo("JE", "fixed_line")),  # +44, but Jersey
        ("+447012345678", NumberInfo("GB", "personal_number")),
        ("+4918012345", NumberInfo("DE", "shared_cost")),
        ("+80012345678", NumberInfo(GLOBAL, "toll_free")),
        ("+881612345678", NumberInfo(GLOBAL, "mobile")),
    ],
)
def test_valid_numbers_have_their_own_country_and_type(number: str, info: NumberInfo) -> None:
    assert classify(number) == info


@pytest.mark.parametrize(
    "number",
    [
        "+9009011234567",  # no such range in Turkey
        "+90900123456",  # too short for Turkey
        "+316123456789012",  # too long for the Netherlands
        "+3161234567",  # too short
        "+15551234567",  # NANP 555 (fiction)
        "+19765551234",  # no such area code
        "+31600000486",  # NL 0600: not in use
        "+0201234567",  # no country code 0
        "+99912345678",  # country code 999 is not assigned
        "31612345678",  # no +
        "",
    ],
)
def test_numbers_that_cannot_exist_have_no_classification(number: str) -> None:
    assert classify(number) is None


def test_regions_are_iso_codes_or_global() -> None:
    assert all(is_region(code) for code in ("NL", "JM", GLOBAL))
    assert not any(is_region(code) for code in ("nl", "XX", "*", ""))


@pytest.mark.parametrize(
    ("number", "prefix"),
    [
        ("+12125550100", "+1212"),  # New York: NANP's area code
        ("+13055550100", "+1305"),  # Miami
        ("+4930123456", "+4930"),  # Berlin
        ("+33142278186", "+331"),  # Paris
        ("+447700900123", "+44"),  # a UK mobile: no area, the country alone
        ("+800123", "+800"),  # international freephone
        ("12125550100", None),  # not E.164
    ],
)
def test_a_numbers_local_prefix_is_its_country_and_area(number: str, prefix: str | None) -> None:
    assert local_prefix(number) == prefix
