"""voicedock.example.toml: the configuration users copy must be at least as safe as no file."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicedock.calls.policy import DestinationRefused, check_destination
from voicedock.config import DEFAULT_BLOCKED_PREFIXES, PolicySettings, load_settings

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).resolve().parents[1] / "voicedock.example.toml"


def in_range(prefix: str) -> str:
    """A valid E.164 number in the range ``prefix`` (padded with digits to 12)."""
    return prefix + "5" * max(12 - len(prefix) + 1, 1)


def refusal(number: str, policy: PolicySettings) -> str | None:
    """The policy's reason for refusing ``number``, or None when it is allowed."""
    try:
        check_destination(number, policy)
    except DestinationRefused as exc:
        return exc.reason
    return None


def test_example_policy_blocks_everything_the_defaults_block() -> None:
    policy = load_settings(EXAMPLE, environ={}).policy
    missing = []
    for prefix in DEFAULT_BLOCKED_PREFIXES:
        number = in_range(prefix)
        assert refusal(number, PolicySettings()) == "blocked-prefix"  # built in: refused ...
        if refusal(number, policy) != "blocked-prefix":  # ... so by the example's policy too
            missing.append(prefix)
    assert missing == [], f"the example config lets these default-blocked ranges through: {missing}"


def test_example_blocks_exactly_the_built_in_ranges() -> None:
    """No typos and no extra ranges: the example documents the defaults, nothing else."""
    blocked = load_settings(EXAMPLE, environ={}).policy.blocked_prefixes
    assert sorted(blocked) == sorted(DEFAULT_BLOCKED_PREFIXES)
    assert len(blocked) == len(set(blocked))


def test_example_still_allows_ordinary_numbers() -> None:
    policy = load_settings(EXAMPLE, environ={}).policy
    for number in ("+31612345678", "+442071234567", "+12125551234", "+905321234567"):
        assert refusal(number, policy) is None, number
