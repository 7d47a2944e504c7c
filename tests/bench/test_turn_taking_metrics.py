"""The turn-taking bench's measures: cut-offs, answer start, VAD frame scores, noise mixing."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import turn_taking as bench

pytestmark = pytest.mark.unit


def test_a_decision_before_the_real_end_is_an_early_cut_off() -> None:
    assert bench.early_cut_off([1800, 3500], end_ms=3000)
    assert not bench.early_cut_off([3460], end_ms=3000)
    assert not bench.early_cut_off([], end_ms=3000)
    assert not bench.early_cut_off([2990], end_ms=3000, slack_ms=20)


def test_answer_start_counts_from_the_real_end_to_the_decision_or_the_words() -> None:
    assert bench.answer_start([3460], end_ms=3000, ready_ms=3460) == 460
    assert bench.answer_start([3460], end_ms=3000, ready_ms=3700) == 700  # waited for words
    assert bench.answer_start([1800, 3460], end_ms=3000, ready_ms=None) == 460
    assert bench.answer_start([1800], end_ms=3000, ready_ms=1900) is None


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert bench.percentile(values, 0.5) in (50, 51)
    assert bench.percentile(values, 0.95) == 95
    assert bench.percentile([7], 0.95) == 7
    assert bench.percentile([], 0.5) != bench.percentile([], 0.5)  # nan


def test_frame_scores_against_the_labels() -> None:
    spans = [(100, 300), (500, 600)]  # frames 5-14 and 25-29 are speech
    truth = [5 <= i < 15 or 25 <= i < 30 for i in range(40)]
    perfect = bench.score_frames(truth, spans)
    assert (perfect.accuracy, perfect.missed, perfect.false_alarms) == (1.0, 0, 0)
    assert (perfect.onset_ms, perfect.offset_ms) == (0, 0)
    late = [7 <= i < 15 or 25 <= i < 33 for i in range(40)]  # starts 40 ms late, ends 60 ms late
    score = bench.score_frames(late, spans)
    assert (score.onset_ms, score.offset_ms) == (40, 60)
    assert (score.missed, score.false_alarms) == (2, 3)
    assert score.accuracy == pytest.approx(35 / 40)


@pytest.mark.parametrize("kind", bench.NOISES)
def test_noise_is_mixed_at_the_stated_snr(kind: str) -> None:
    rate = 8000
    t = np.arange(rate * 3) / rate
    speech = (3000 * np.sin(2 * np.pi * 200 * t)).astype("<i2")
    speech[: rate // 2] = 0
    spans = [(500, 3000)]
    talker = bench.corpus.Item(
        bench.corpus.specs(per_voice=1)[0], speech.tobytes(), ((500, 3000),), 3000
    )
    noise = bench.noise_of(kind, [talker], seed=3, n=len(speech))
    mixed = np.frombuffer(bench.mix(speech.tobytes(), noise, spans, 10.0), dtype="<i2")
    added = mixed.astype(np.float64) - speech
    part = slice(rate // 2, None)
    snr = 10 * np.log10(np.mean(speech[part].astype(np.float64) ** 2) / np.mean(added[part] ** 2))
    assert snr == pytest.approx(10.0, abs=1.0)  # µ-law's own error included


def test_the_audio_clock_wakes_each_waiter_once_its_time_has_come() -> None:
    async def run() -> list[int]:
        clock = bench.AudioClock()
        woke: list[int] = []

        async def wait(at: int) -> None:
            await clock.until(at)
            woke.append(clock.now_ms)

        tasks = [asyncio.create_task(wait(at)) for at in (50, 20, 0)]
        for _ in range(5):
            await asyncio.sleep(0)
            clock.advance(20)
            await asyncio.sleep(0)
        await asyncio.gather(*tasks)
        return woke

    assert asyncio.run(run()) == [0, 20, 60]
