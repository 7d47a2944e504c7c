"""The replay evaluator's judging: what counts as the caller's speech, a cut-off, a barge-in."""

from __future__ import annotations

import pytest

from voicedock.pipeline.frames import UserSpeechStopped
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.hearing.turn_replay import (
    Line,
    cut_off,
    judge,
    percentile,
    replay_modes,
    speech_segments,
)

pytestmark = pytest.mark.unit

CFG = EndpointingConfig()


def frames(*spans: tuple[int, int], total_ms: int = 4000) -> list[bool]:
    """Per 20 ms frame: inside one of ``spans`` (ms)."""
    return [any(a <= k * 20 < b for a, b in spans) for k in range(total_ms // 20)]


def test_speech_joins_short_gaps_and_drops_blips() -> None:
    speech = frames((100, 400), (440, 600), (1000, 1060), (2000, 2200))
    # The 40 ms gap (under speech_gap_ms 60) is joined; the 60 ms blip (under 100) dropped.
    assert speech_segments(speech, CFG) == [(100, 600), (2000, 2200)]


def test_a_caller_resuming_within_a_second_was_cut_off() -> None:
    speech = [(0, 1000), (1900, 2500)]
    assert cut_off(1600, speech)  # resumed 300 ms later
    assert not cut_off(600, speech[:1])  # nothing after
    assert not cut_off(800, speech)  # resumed 1,100 ms later: a new turn


def test_barge_ins_missed_and_false() -> None:
    loud = frames((1000, 3000))  # the reply plays from 1 s to 3 s
    line = Line([], [], loud, [(200, 800), (1400, 2200), (2600, 2760)])
    stops = [UserSpeechStopped(200, 800, 1300)]
    # The long speech over the reply was never taken as an interruption; the short one was.
    result = judge("c", "silence", stops, [2740], line, barge_in_ms=500)
    assert (result.turns, result.early_cut_offs) == (1, 1)  # resumed 100 ms after the decision
    assert (result.barge_ins, result.missed_barge_ins, result.false_barge_ins) == (1, 1, 1)
    heard = judge("c", "silence", [], [1640], line, barge_in_ms=500)
    assert (heard.barge_ins, heard.missed_barge_ins, heard.false_barge_ins) == (1, 0, 0)


def test_modes_with_their_sweep_and_nearest_rank_percentiles() -> None:
    names = [m.name for m in replay_modes(["silence", "model"])]
    assert names[0] == "silence"
    assert "silence end_silence_ms=1000" in names
    assert "model model_floor_ms=200" in names
    assert [m.name for m in replay_modes(["model"], sweep=False)] == ["model"]
    with pytest.raises(ValueError, match="unknown mode"):
        replay_modes(["fast"])
    assert percentile([300, 2000, 300, 300], 0.5) == 300
    assert percentile([300, 2000, 300, 300], 0.95) == 2000
    assert percentile([], 0.5) is None
