"""``HeardTimeline``: a moment of the caller's audio as the dialogue heard it, counted back
from a frame, is found where the recording put it, however the frames came."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from voicedock.media.heard_timeline import HeardTimeline
from voicedock.media.recording import CallRecorder

pytestmark = pytest.mark.unit

RATE = 8000
FRAME = RATE // 50
FRAME_S = 0.02
T0 = 100.0  # the recorder's clock at its start
WALL = 1_700_000_000.0  # the wall clock then


def frame(value: int) -> np.ndarray:
    return np.full(FRAME, value, dtype=np.int16)


async def test_words_heard_after_a_stall_are_found_where_the_file_has_them(
    tmp_path: Path,
) -> None:
    """The caller speaks without a pause (frame i carries the value i + 1). After 1 s the
    event loop stalls for 0.4 s: the gap filler hands on 0.4 s of silence for the stall, then
    the 20 frames that were waiting come at once, then the rest on time. The dialogue heard
    every one of them, in that order; the recording placed them by when they came."""
    now = T0
    recorder = CallRecorder(tmp_path / "call.wav", RATE, clock=lambda: now)
    timeline = HeardTimeline()
    heard: list[int] = []  # what the dialogue heard, frame by frame (0: a gap's silence)

    def hand_on(value: int, at: float, *, gap: bool = False) -> None:
        nonlocal now
        now = at
        placed = recorder.caller(frame(0 if gap else value), gap=gap)
        timeline.add(WALL + (at - T0), FRAME_S, placed)
        heard.append(0 if gap else value)

    for i in range(50):
        hand_on(i + 1, T0 + i * FRAME_S)
    stalled_until = T0 + 50 * FRAME_S + 0.4
    for k in range(20):  # the gap filler, once the loop runs again
        hand_on(0, stalled_until + k * 1e-5, gap=True)
    for i in range(50, 70):  # the frames that waited
        hand_on(i + 1, stalled_until + 0.001 + (i - 50) * 1e-5)
    for i in range(70, 150):  # on time again
        hand_on(i + 1, stalled_until + (i - 69) * FRAME_S)
    decided = WALL + (now - T0)  # the last frame ended a turn
    await recorder.aclose()
    left = soundfile.read(str(tmp_path / "call.wav"), dtype="int16")[0][:, 0]

    for value in (10, 51, 60, 70, 71, 120, 150):  # before, in and after the stall's frames
        index = heard.index(value)
        before = (len(heard) - index) * FRAME_S  # of the dialogue's audio, to its end
        placed = timeline.placed(decided, before - 0.01)  # 10 ms into the frame
        assert placed is not None
        assert left[round(placed * RATE)] == value, value
        # By the clock alone (the turn's start counted back from when it ended) it would be
        # elsewhere, once the stall's silence is behind it.
        by_clock = round((decided - WALL - (before - 0.01)) * RATE)
        if value <= 60:
            assert left[by_clock] != value, value


def test_a_moment_before_the_first_frame_or_the_anchor_is_not_placed() -> None:
    timeline = HeardTimeline()
    assert timeline.placed(WALL, 0.0) is None  # no frame yet
    timeline.add(WALL + 1.0, FRAME_S, 0.5)
    assert timeline.placed(WALL, 0.0) is None  # nothing handed on by then
    assert timeline.placed(WALL + 1.0, 1.0) is None  # before the first frame
    assert timeline.placed(WALL + 1.0, 0.01) == pytest.approx(0.51)


def test_a_frame_the_file_let_go_is_a_point() -> None:
    """A gap's silence the recording let go has no length in the file: a moment in it is
    where the next frame starts."""
    timeline = HeardTimeline()
    timeline.add(WALL, FRAME_S, 0.0)
    timeline.add(WALL + 0.02, FRAME_S, 0.02)  # let go: the next frame goes there too
    timeline.add(WALL + 0.021, FRAME_S, 0.02)
    assert timeline.placed(WALL + 0.021, 0.03) == pytest.approx(0.02)
    assert timeline.placed(WALL + 0.021, 0.01) == pytest.approx(0.03)
