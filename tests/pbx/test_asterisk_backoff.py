import random

import pytest

from voicedock.pbx.asterisk.backoff import Backoff

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
