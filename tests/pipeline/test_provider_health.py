"""The node-wide breaker per provider endpoint: opens after failures in a row, cools down,
probes one request at a time."""

from __future__ import annotations

import pytest

from voicedock.pipeline.pools.provider_health import BreakerState, Endpoint, ProviderHealth

pytestmark = pytest.mark.unit

PRIMARY = Endpoint("llm", "openai", "https://user:secret@llm.example:8443/v1", "gpt-4o-mini")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def failing(health: ProviderHealth, times: int) -> None:
    for _ in range(times):
        attempt = health.attempt(PRIMARY)
        assert attempt is not None
        attempt.failed()


def test_three_failures_in_a_row_open_it_until_the_cool_down_then_one_probe_goes() -> None:
    clock = Clock()
    health = ProviderHealth(failures_to_open=3, cool_down_s=30, clock=clock)
    failing(health, 2)
    assert health.state(PRIMARY) is BreakerState.CLOSED
    failing(health, 1)
    assert health.state(PRIMARY) is BreakerState.OPEN
    assert health.attempt(PRIMARY) is None
    clock.now += 30
    probe = health.attempt(PRIMARY)
    assert probe is not None
    assert health.attempt(PRIMARY) is None  # one probe at a time
    probe.succeeded()
    assert health.state(PRIMARY) is BreakerState.CLOSED
    assert health.attempt(PRIMARY) is not None
    counts = health.counts()[PRIMARY]
    assert (counts.requests, counts.failures, counts.opened) == (5, 3, 1)


def test_a_failed_probe_opens_it_again_and_an_abandoned_one_frees_the_probe() -> None:
    clock = Clock()
    health = ProviderHealth(failures_to_open=1, cool_down_s=10, clock=clock)
    failing(health, 1)
    clock.now += 10
    probe = health.attempt(PRIMARY)
    assert probe is not None
    probe.abandoned()  # a barge-in: neither way
    assert health.state(PRIMARY) is BreakerState.HALF_OPEN
    probe = health.attempt(PRIMARY)
    assert probe is not None
    probe.failed()
    probe.succeeded()  # settled once: ignored
    assert health.state(PRIMARY) is BreakerState.OPEN
    assert health.counts()[PRIMARY].opened == 2


def test_a_success_resets_the_run_of_failures() -> None:
    health = ProviderHealth(failures_to_open=2, clock=Clock())
    failing(health, 1)
    attempt = health.attempt(PRIMARY)
    assert attempt is not None
    attempt.succeeded()
    failing(health, 1)
    assert health.state(PRIMARY) is BreakerState.CLOSED


def test_the_last_resort_goes_even_while_open() -> None:
    health = ProviderHealth(failures_to_open=1, clock=Clock())
    failing(health, 1)
    assert health.attempt(PRIMARY) is None
    assert health.attempt(PRIMARY, last_resort=True) is not None


def test_the_label_names_the_host_never_the_credentials_or_path() -> None:
    assert PRIMARY.label() == "openai/llm.example:8443/gpt-4o-mini"
    assert Endpoint("llm", "offline").label() == "offline"


def test_totals_per_provider_outlive_the_bounded_breakers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("voicedock.pipeline.pools.provider_health.MAX_ENDPOINTS", 2)
    health = ProviderHealth(failures_to_open=1, clock=Clock())
    failing(health, 1)  # PRIMARY opens
    for model in ("m1", "m2", "m3"):  # an organization's many models
        attempt = health.attempt(Endpoint("llm", "openai", "https://llm.example/v1", model))
        assert attempt is not None
        attempt.succeeded()
    assert len(health.counts()) == 2
    assert health.state(PRIMARY) is BreakerState.OPEN  # closed ones were forgotten first
    assert health.totals()[("llm", "openai")].requests == 4
    assert health.open_now() == {("llm", "openai"): 1}
