"""The destination policy: strict forms, globs for internal targets, valid numbers, their
countries, types and blocked ranges."""

from __future__ import annotations

import pytest

from voicedock.calls.policy import (
    Destination,
    DestinationRefused,
    check_destination,
    check_transfer_destination,
    is_internal_target,
    loggable,
)
from voicedock.config import BUILT_IN_BLOCKED_PREFIXES, PolicySettings
from voicedock.domain.number_plan import classify
from voicedock.errors import BadRequest

pytestmark = pytest.mark.unit

TARGETS = ["sales", "agent-*", "queue:*", "sip:*@pbx.example.com"]


def policy(**changes: list[str]) -> PolicySettings:
    settings = PolicySettings(allowed_countries=["NL"], internal_targets=list(TARGETS))
    for name, value in changes.items():
        setattr(settings, name, value)
    return settings


@pytest.mark.parametrize(
    "destination",
    ["sales", "agent-7", "agent-", "queue:support", "sip:alice@pbx.example.com"],
)
def test_configured_internal_targets_pass(destination: str) -> None:
    assert check_transfer_destination(destination, policy()) == Destination(destination, True)


@pytest.mark.parametrize(
    "destination",
    ["support", "Sales", "queue2", "sip:alice@evil.example.com", "sip:alice@pbx.example.com.evil"],
)
def test_well_formed_but_unconfigured_targets_are_403(destination: str) -> None:
    with pytest.raises(DestinationRefused) as refused:
        check_transfer_destination(destination, policy())
    assert refused.value.status == 403
    assert refused.value.reason == "internal-not-allowed"
    assert refused.value.body()["error"] == "Destination not allowed"


@pytest.mark.parametrize(
    "destination",
    [
        "",
        "sales&PJSIP/x",
        "sales,1",
        "agent-1\r\nAction: Originate",
        "queue:",
        "queue:sup port",
        "sip:alice@pbx.example.com;transport=tcp",
        "sip:@pbx.example.com",
        "sip:a@b@pbx.example.com",
        "PJSIP/sales@carrier",
        "0031201234567",
        "1234567",
        "+31 20 1234567",
        "+3120",
        "+0201234567",
        "+３１２０１２３４５６７",
    ],
)
def test_malformed_destinations_are_400_even_when_a_glob_would_match(destination: str) -> None:
    everything = policy(internal_targets=["*"])
    with pytest.raises(BadRequest):
        check_transfer_destination(destination, everything)
    assert not is_internal_target(destination, everything)


def test_a_number_is_never_an_internal_target() -> None:
    assert not is_internal_target("+31201234567", policy(internal_targets=["*"]))
    assert check_transfer_destination("+31201234567", policy()) == Destination(
        "+31201234567", False
    )


@pytest.mark.parametrize(
    "number",
    [
        "+80812345678",  # international shared cost
        "+870301234567",  # Inmarsat
        "+878101234567890",  # universal personal telecommunications
        "+881612345678",  # satellite
        "+8823421234",  # international networks
        "+883510012345",
        "+88812345678901",  # OCHA
        "+979123456789",  # international premium rate
    ],
)
def test_global_services_are_blocked_even_when_every_country_is_allowed(number: str) -> None:
    assert classify(number) is not None  # a valid number: refused for its range
    with pytest.raises(DestinationRefused) as refused:
        check_transfer_destination(number, policy(allowed_countries=["*"]))
    assert refused.value.reason == "blocked-prefix"
    assert number.startswith(BUILT_IN_BLOCKED_PREFIXES)


@pytest.mark.parametrize(
    "number",
    [
        "+19002123456",  # NANP premium rate
        "+447012345678",  # UK personal number (070)
        "+449012345678",  # UK premium rate
        "+319001234567",  # NL premium rate (0900)
        "+319061234",  # NL premium rate (0906)
        "+33891234567",  # FR premium rate (089)
        "+499001234567",  # DE premium rate (0900)
        "+4918012345",  # DE shared cost (0180)
        "+3278791234",  # BE shared cost (078)
    ],
)
def test_premium_shared_cost_and_personal_numbers_are_refused_by_default(number: str) -> None:
    with pytest.raises(DestinationRefused) as refused:
        check_destination(number, policy(allowed_countries=["*"]))
    assert refused.value.reason == "refused-number-type"
    assert refused.value.status == 403


def test_the_operator_may_call_a_refused_type_by_taking_it_off_the_list() -> None:
    check_destination("+319001234567", policy(refused_number_types=[]))
    with pytest.raises(DestinationRefused):
        check_destination("+31880123456", policy(refused_number_types=["uan"]))


@pytest.mark.parametrize(
    "number",
    [
        "+18762101234",  # Jamaica
        "+18092345678",  # Dominican Republic
        "+16492311234",  # Turks and Caicos
        "+12684641234",  # Antigua and Barbuda
    ],
)
def test_caribbean_nanp_numbers_are_their_own_countries_not_the_us(number: str) -> None:
    with pytest.raises(DestinationRefused) as refused:
        check_destination(number, policy(allowed_countries=["US", "CA"]))
    assert refused.value.reason == "country-not-allowed"
    check_destination("+12125550101", policy(allowed_countries=["US", "CA"]))


def test_only_allowed_countries_are_called() -> None:
    dutch_only = policy(allowed_countries=["NL"])
    check_destination("+31201234567", dutch_only)
    check_destination("+31612345678", dutch_only)
    with pytest.raises(DestinationRefused) as refused:
        check_destination("+4930123456", dutch_only)
    assert refused.value.reason == "country-not-allowed"
    assert "DE" in refused.value.message
    assert "+49" not in refused.value.message
    with pytest.raises(DestinationRefused) as refused:
        check_destination("+80012345678", dutch_only)  # international freephone: no country
    assert refused.value.reason == "country-not-allowed"
    check_destination("+80012345678", policy(allowed_countries=["001"]))
    with pytest.raises(DestinationRefused):
        check_destination("+31201234567", policy(allowed_countries=[]))  # nothing external


def test_extra_blocked_prefixes_add_to_the_built_in_ones() -> None:
    extra = policy(allowed_countries=["*"], extra_blocked_prefixes=["+3120"])
    with pytest.raises(DestinationRefused) as refused:
        check_destination("+31201234567", extra)
    assert refused.value.reason == "blocked-prefix"
    check_destination("+31612345678", extra)
    with pytest.raises(DestinationRefused):
        check_destination("+881612345678", extra)  # the built-ins still apply


@pytest.mark.parametrize(
    "number",
    [
        "+9009011234567",  # Turkey has no 0901 range
        "+316123456789012",  # an NL mobile number with a digit too many
        "+3161234567",  # ... and one too few
        "+15551234567",  # NANP 555: fiction, no country
        "+31600000486",  # NL 0600: not in use
        "+88112345678",  # satellite, wrong length
    ],
)
def test_numbers_that_cannot_exist_are_400_before_any_policy(number: str) -> None:
    for anything in (policy(allowed_countries=["*"], refused_number_types=[]),):
        with pytest.raises(BadRequest) as invalid:
            check_transfer_destination(number, anything)
        assert invalid.value.status == 400
        assert invalid.value.error == "Invalid destination format"
        assert not isinstance(invalid.value, DestinationRefused)


def test_loggable_masks_numbers_and_uri_hosts() -> None:
    assert loggable("+31201234567") == "+312***67"
    assert loggable("sip:alice@pbx.example.com") == "sip:alice@…"
    assert loggable("queue:support") == "queue:support"
