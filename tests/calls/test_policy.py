"""The destination policy: strict forms, globs for internal targets, blocked ranges."""

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
from voicedock.config import DEFAULT_BLOCKED_PREFIXES, PolicySettings
from voicedock.errors import BadRequest

pytestmark = pytest.mark.unit

TARGETS = ["sales", "agent-*", "queue:*", "sip:*@pbx.example.com"]


def policy(**changes: list[str]) -> PolicySettings:
    settings = PolicySettings(internal_targets=list(TARGETS))
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
        "+19005550123",
        "+447012345678",
        "+449012345678",
        "+88112345678",
        "+97912345678",
        "+80812345678",
        "+88212345678",
        "+88312345678",
        "+87012345678",
        "+31900123456",
    ],
)
def test_premium_and_international_network_ranges_are_blocked_by_default(number: str) -> None:
    with pytest.raises(DestinationRefused) as refused:
        check_transfer_destination(number, PolicySettings())
    assert refused.value.reason == "blocked-prefix"
    assert any(number.startswith(prefix) for prefix in DEFAULT_BLOCKED_PREFIXES)


def test_allowed_prefixes_limit_external_numbers_and_blocked_wins() -> None:
    dutch_only = policy(allowed_prefixes=["+31"])
    check_destination("+31201234567", dutch_only)
    with pytest.raises(DestinationRefused) as refused:
        check_destination("+4930123456", dutch_only)
    assert refused.value.reason == "prefix-not-allowed"
    with pytest.raises(DestinationRefused):
        check_destination("+31900123456", dutch_only)  # allowed country, premium range


def test_loggable_masks_numbers_and_uri_hosts() -> None:
    assert loggable("+31201234567") == "+312***67"
    assert loggable("sip:alice@pbx.example.com") == "sip:alice@…"
    assert loggable("queue:support") == "queue:support"
