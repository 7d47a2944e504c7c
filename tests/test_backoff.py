import random

import pytest

from voicedock.backoff import Backoff, exponential
from voicedock.pbx.freeswitch.esl.settings import next_backoff

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


def test_the_esl_reconnect_delay_is_uniform_up_to_the_capped_exponential():
    for attempt in (0, 3, 40, 10_000):
        ceiling = min(30.0, 0.5 * 2.0 ** min(attempt, 30))
        delays = [next_backoff(attempt, 0.5, 30.0) for _ in range(50)]
        assert all(0.25 <= d <= ceiling for d in delays)
