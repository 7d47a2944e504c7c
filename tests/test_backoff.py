import random

import pytest

from voicedock.backoff import Backoff, exponential
from voicedock.pbx.freeswitch.esl.settings import EslSettings

pytestmark = pytest.mark.unit


def test_delays_grow_exponentially_and_stay_capped():
    backoff = Backoff(initial=0.1, cap=2.0, jitter=0.0)
    delays = [backoff.next_delay() for _ in range(8)]
    assert delays[:5] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])
    assert all(d == pytest.approx(2.0) for d in delays[5:])


def test_jitter_stays_within_bounds_and_varies():
    backoff = Backoff(initial=1.0, cap=1.0, jitter=0.5, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(50)]
    assert all(0.5 <= d <= 1.0 for d in delays)
    assert len({round(d, 6) for d in delays}) > 10


def test_reset_starts_over():
    backoff = Backoff(initial=0.1, cap=5.0, jitter=0.0)
    for _ in range(4):
        backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == pytest.approx(0.1)


def test_exponential_grows_from_first_and_stops_at_the_cap():
    assert [exponential(n, first=5.0, factor=4.0, cap=1000.0) for n in range(5)] == [
        5.0,
        20.0,
        80.0,
        320.0,
        1000.0,
    ]


def test_exponential_never_overflows():
    for attempt in (64, 1024, 100_000):
        assert exponential(attempt, first=0.5, factor=2.0, cap=30.0) == 30.0
        assert exponential(attempt, first=5.0, factor=4.0, cap=43_200.0) == 43_200.0


class _Draws(random.Random):
    """Draws from ``values`` in turn (0.0: a whole step waited; 0.999: half of it)."""

    def __init__(self, values: list[float]) -> None:
        super().__init__()
        self.values = values
        self.n = 0

    def random(self) -> float:
        self.n += 1
        return self.values[(self.n - 1) % len(self.values)]


@pytest.mark.parametrize(
    "draws",
    [[0.0], [0.999], [0.999, 0.999, 0.999, 0.999, 0.0], [0.999] * 7 + [0.0], [0.3, 0.9, 0.1]],
)
def test_the_esl_reconnect_waits_at_most_about_twice_as_long_as_it_has_waited(
    draws: list[float],
) -> None:
    """However the draws fall (a run of short delays, then the longest), the next delay is at
    most twice the time already waited plus the first step: once FreeSWITCH is back after an
    outage, voicedock reconnects within about twice the outage (a 3 s restart: within 7 s of
    the crash), never a long step reached early by quick failures."""
    settings = EslSettings("127.0.0.1", 8021, "esl-secret")
    backoff = settings.reconnect_backoff()
    backoff.rng = _Draws(draws)
    waited = 0.0
    for _ in range(40):
        delay = backoff.next_delay()
        assert settings.backoff_initial / 2 <= delay <= 2 * waited + settings.backoff_initial
        assert delay <= settings.backoff_max
        waited += delay
    attempts, waited, backoff = [0.0], 0.0, settings.reconnect_backoff()
    backoff.rng = _Draws(draws)
    while attempts[-1] < 3.0:  # FreeSWITCH down for 3 s: the first attempt after it is back
        waited += backoff.next_delay()
        attempts.append(waited)
    assert attempts[-1] <= 7.0
