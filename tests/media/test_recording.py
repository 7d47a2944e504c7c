"""``CallRecorder``: two channels on one 20 ms timeline, written incrementally."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import soundfile

from voicedock.media.recording import CallRecorder, RecordingError

pytestmark = pytest.mark.unit

RATE = 8000
FRAME = RATE // 50


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def frame(value: int) -> np.ndarray:
    return np.full(FRAME, value, dtype=np.int16)


@pytest.mark.parametrize("file_format", ["wav", "flac"])
async def test_caller_left_assistant_right_aligned_on_the_clock(
    tmp_path: Path, file_format: str
) -> None:
    clock = Clock()
    path = tmp_path / "org" / f"call.{file_format}"
    recorder = CallRecorder(path, RATE, file_format=file_format, clock=clock)
    for tick in range(150):  # 3 s: the caller streams every frame
        clock.now = 100.0 + tick * 0.02
        recorder.caller(frame(1000))
        if 50 <= tick < 100:  # the assistant speaks from 1 s to 2 s; nothing sent otherwise
            recorder.assistant(frame(-2000))
    duration = await recorder.aclose()
    assert duration == pytest.approx(3.0)
    data, rate = soundfile.read(str(path), dtype="int16")
    assert rate == RATE
    assert data.shape == (3 * RATE, 2)
    assert (data[:, 0] == 1000).all()
    right = data[:, 1]
    assert (right[:RATE] == 0).all()
    assert (right[2 * RATE :] == 0).all()
    assert (right[RATE : 2 * RATE] == -2000).all()
    assert await recorder.aclose() == duration  # idempotent


async def test_jitter_is_absorbed_and_stop_ends_the_recording(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "call.wav"
    async with CallRecorder(path, RATE, clock=clock) as recorder:
        for tick in range(100):
            clock.now = 100.0 + tick * 0.02 + (0.015 if tick % 2 else 0.0)  # late every other
            recorder.caller(frame(tick))
        recorder.stop()  # a transfer: nothing after this is recorded
        recorder.caller(frame(7))
        recorder.assistant(frame(7))
    data, _ = soundfile.read(str(path), dtype="int16")
    assert data.shape == (100 * FRAME, 2)  # no silence inserted for 15 ms of jitter
    assert list(data[::FRAME, 0]) == list(range(100))


async def test_an_unwritable_directory_is_reported_at_close(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    recorder = CallRecorder(blocker / "call.wav", RATE)
    recorder.caller(frame(1))
    with pytest.raises(RecordingError):
        await recorder.aclose()


@pytest.mark.parametrize("file_format", ["wav", "flac"])
async def test_a_silenced_stretch_is_zero_on_both_channels_even_once_written(
    tmp_path: Path, file_format: str
) -> None:
    clock = Clock()
    path = tmp_path / f"call.{file_format}"
    recorder = CallRecorder(path, RATE, file_format=file_format, clock=clock)
    for tick in range(200):  # 4 s on both channels, flushed a second at a time
        clock.now = 100.0 + tick * 0.02
        recorder.caller(frame(1000))
        recorder.assistant(frame(-1000), clock.now)
    recorder.silence(100.5, 101.5)  # asked after its audio was written
    assert await recorder.aclose() == pytest.approx(4.0)
    data, rate = soundfile.read(str(path), dtype="int16")
    assert rate == RATE
    assert data.shape == (4 * RATE, 2)
    assert not data[int(0.5 * RATE) : int(1.5 * RATE)].any()
    assert (data[: int(0.5 * RATE) - 1, 0] == 1000).all()
    assert (data[int(1.5 * RATE) + 1 :, 1] == -1000).all()
    assert not list(tmp_path.glob("*.partial"))


async def test_a_held_recording_makes_no_file_until_released_then_writes_it_all(
    tmp_path: Path,
) -> None:
    clock = Clock()
    path = tmp_path / "held.wav"
    recorder = CallRecorder(path, RATE, clock=clock)
    recorder.hold()
    for tick in range(150):  # 3 s held: more than a flush's worth
        clock.now = 100.0 + tick * 0.02
        recorder.caller(frame(700))
        recorder.assistant(frame(-700))
    await asyncio.sleep(0.05)  # the writer thread would have made the file by now
    assert not path.exists()
    recorder.release()
    for tick in range(150, 200):
        clock.now = 100.0 + tick * 0.02
        recorder.caller(frame(700))
        recorder.assistant(frame(-700))
    assert await recorder.aclose() == pytest.approx(4.0)
    data, _ = soundfile.read(str(path), dtype="int16")
    assert data.shape == (4 * RATE, 2)  # from the start: what was held too
    assert (data[:, 0] == 700).all()


async def test_a_discarded_recording_never_reaches_the_disk(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "org" / "discarded.wav"
    recorder = CallRecorder(path, RATE, clock=clock)
    recorder.hold()
    for tick in range(150):
        clock.now = 100.0 + tick * 0.02
        recorder.caller(frame(700))
    recorder.discard()
    for tick in range(150, 200):  # after the refusal: dropped too
        clock.now = 100.0 + tick * 0.02
        recorder.caller(frame(700))
        recorder.assistant(frame(-700))
    assert await recorder.aclose() == 0.0
    assert recorder.discarded
    assert not path.exists()
    assert not path.parent.exists()


async def test_only_a_recording_not_begun_is_held_and_only_a_held_one_discarded(
    tmp_path: Path,
) -> None:
    async with CallRecorder(tmp_path / "call.wav", RATE) as recorder:
        with pytest.raises(RuntimeError):
            recorder.discard()
        recorder.caller(frame(1))
        with pytest.raises(RuntimeError):
            recorder.hold()


@pytest.mark.parametrize("silence", [0, 8])  # µ-law's and A-law's silence, decoded
async def test_a_gap_filled_at_once_leaves_the_caller_aligned(tmp_path: Path, silence: int) -> None:
    """The caller stops for 0.5 s; their gap is filled with silence once seen, 100 ms of it at
    once (``media/gap_filler.py``), then a frame each 20 ms; then they speak again. Their words
    after the gap are where the clock says, as the assistant heard them."""
    clock = Clock()
    path = tmp_path / "call.wav"
    async with CallRecorder(path, RATE, clock=clock) as recorder:
        for tick in range(50):  # 1 s of the caller's words
            clock.now = 100.0 + tick * 0.02
            recorder.caller(frame(1000))
        for tick in range(55, 75):  # from 1.1 s: the gap so far, then its frames as they come
            clock.now = 100.0 + tick * 0.02
            for _ in range(5 if tick == 55 else 1):
                recorder.caller(frame(silence), gap=True)
        for tick in range(75, 100):  # from 1.5 s: the caller's words again
            clock.now = 100.0 + tick * 0.02
            recorder.caller(frame(2000))
            recorder.assistant(frame(-3000))
    data, _ = soundfile.read(str(path), dtype="int16")
    left, right = data[:, 0], data[:, 1]
    again = int(np.argmax(left == 2000))
    assert abs(again - int(np.argmax(right == -3000))) <= 2 * FRAME  # aligned within 2 frames
    assert (left[: 50 * FRAME] == 1000).all()
    assert (np.abs(left[50 * FRAME : again]) <= 8).all()  # the gap: silence, however it came


async def test_what_came_in_a_burst_is_all_kept(tmp_path: Path) -> None:
    """Frames held up in the network come at once: every one of them is recorded, silence
    (a secure entry's, muted) too."""
    clock = Clock()
    path = tmp_path / "call.wav"
    async with CallRecorder(path, RATE, clock=clock) as recorder:
        for tick in range(10):
            clock.now = 100.0 + tick * 0.02
            recorder.caller(frame(tick + 1))
        for value in range(11, 21):  # ten frames at once, 40 ms later
            recorder.caller(frame(value))
        for _ in range(10):  # ten more, muted
            recorder.caller(frame(0))
    data, _ = soundfile.read(str(path), dtype="int16")
    assert list(data[::FRAME, 0]) == [*range(1, 21), *[0] * 10]
