"""voicedock.example.toml: the configuration users copy must be at least as safe as no file."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicedock.calls.policy import DestinationRefused, check_destination
from voicedock.config import (
    BUILT_IN_BLOCKED_PREFIXES,
    DEFAULT_REFUSED_NUMBER_TYPES,
    PolicySettings,
    load_settings,
)
from voicedock.domain.number_plan import classify
from voicedock.errors import BadRequest

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).resolve().parents[1] / "voicedock.example.toml"


def refusal(number: str, policy: PolicySettings) -> str | None:
    """The policy's reason for refusing ``number`` ("invalid": it cannot exist), or None."""
    try:
        check_destination(number, policy)
    except DestinationRefused as exc:
        return exc.reason
    except BadRequest:
        return "invalid"
    return None


def test_example_policy_allows_its_own_country_only() -> None:
    settings = load_settings(EXAMPLE, environ={})
    own = {info.region for n in settings.numbers if (info := classify(n.number)) is not None}
    assert own == {"NL"}
    assert settings.policy.allowed_countries == ["NL"]
    for number in ("+31612345678", "+31201234567", "+31850835037"):
        assert refusal(number, settings.policy) is None, number
    for number in ("+442071234567", "+12125551234", "+905321234567", "+18762101234"):
        assert refusal(number, settings.policy) == "country-not-allowed", number


def test_example_refuses_at_least_the_default_types_and_every_built_in_range() -> None:
    policy = load_settings(EXAMPLE, environ={}).policy
    assert set(DEFAULT_REFUSED_NUMBER_TYPES) <= set(policy.refused_number_types)
    assert refusal("+319001234567", policy) == "refused-number-type"  # NL premium rate
    everywhere = PolicySettings(
        allowed_countries=["*"],
        refused_number_types=policy.refused_number_types,
        extra_blocked_prefixes=policy.extra_blocked_prefixes,
    )
    for number in ("+881612345678", "+883510012345", "+979123456789", "+870301234567"):
        assert number.startswith(BUILT_IN_BLOCKED_PREFIXES)
        assert refusal(number, everywhere) == "blocked-prefix", number


def test_example_ships_caps_for_a_small_deployment() -> None:
    settings = load_settings(EXAMPLE, environ={})
    organizations = {n.organization for n in settings.numbers}
    for organization in organizations:
        assert 0 < settings.limits.organization_max_calls(organization) <= 20, organization
    for trunk in settings.trunks:
        assert 0 < trunk.max_cps <= 10, trunk.name
        assert 0 < trunk.max_channels <= 50, trunk.name
    assert 0 < settings.rate_limits.calls_per_second <= 10
    assert 0 < settings.rate_limits.organization_calls_per_second <= 10


def test_without_allowed_countries_the_caller_numbers_countries_are_allowed(
    tmp_path: Path,
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert 'allowed_countries = ["NL"]\n' in text
    copy = tmp_path / "voicedock.toml"
    copy.write_text(text.replace('allowed_countries = ["NL"]\n', ""), encoding="utf-8")
    assert load_settings(copy, environ={}).policy.allowed_countries == ["NL"]
