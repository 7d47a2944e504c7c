"""A line that echoes the assistant's voice back, on the real lab Asterisk, through REST.

The echo party returns everything it hears: the assistant's own words must not count as the
caller talking over it. The echo-then-talk party echoes for 7 s and then speaks over the
assistant: that real interruption must still cut the assistant, promptly. Both parties record
what they heard (``<party>-<tag>-rx.wav``), transcribed with the offline Whisper.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from e2e.audio_helpers import (
    assert_heard,
    read_new_recording,
    require_offline_speech,
    transcribe,
    transcript,
    wait_transcript,
    warm_offline_speech,
    words,
)
from e2e.conftest import LiveService
from e2e.test_audio_e2e import (
    ECHO_PARTY,
    LONG_GREETING,
    control,
    has_words,
    place_call,
    wait_recorded,
)
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

ECHO_THEN_TALK_PARTY = "+31612345687"  # echoes for 7 s, then talks over the assistant
TALKS_AT_S = 7.0  # in its recording: when the party starts speaking over the assistant
# From the party's first sound to the end of the assistant's audio in what the party heard:
# the barge-in (240 ms of speech that is not echo), the flush and the PBX's audio path both
# ways (about 0.25 s on the lab), with room for a loaded machine.
MAX_CUT_S = 0.6
LOUD = 32768 * 10 ** (-45 / 20)  # a 20 ms frame above -45 dBFS carries a voice

GREETING = (
    "Hello, this is the city library. Our opening hours are from nine in the morning "
    "until six in the evening."
)
SAID = "Your book has arrived at the front desk, you can pick it up until Friday."


@pytest.fixture(autouse=True)
def _offline_speech() -> None:
    require_offline_speech()


@pytest.fixture
async def warm_speech() -> None:
    await warm_offline_speech()


async def test_a_line_that_echoes_the_assistant_does_not_interrupt_it(
    live_ari: LiveService, lab: LabAsterisk, warm_speech: None
) -> None:
    live = live_ari
    before = set(lab.recordings_dir.glob("echo-*-rx.wav"))
    call_id = await place_call(live, ECHO_PARTY, GREETING)

    greeting = await wait_transcript(live, call_id, lambda m: m["role"] == "assistant", 30)
    assert (greeting["content"], greeting["interrupted"]) == (GREETING, False)
    await control(live, call_id, {"type": "say", "content": SAID})
    said = await wait_transcript(
        live, call_id, lambda m: m["role"] == "assistant" and m["content"] != GREETING, 30
    )
    assert (said["content"], said["interrupted"]) == (SAID, False)

    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=15)
    spoken = [(m["content"], m["interrupted"]) for m in transcript(ended, "assistant")]
    assert spoken == [(GREETING, False), (SAID, False)]
    # Its own voice coming back was never taken for the caller.
    assert transcript(ended, "user") == []

    pcm, rate = await read_new_recording(lab.recordings_dir, "echo-*-rx.wav", before)
    heard = await transcribe(pcm, rate)
    assert_heard({"library", "opening", "hours", "evening", "book", "arrived", "friday"}, heard)


async def test_a_caller_talking_after_the_echo_still_interrupts_the_assistant(
    live_ari: LiveService, lab: LabAsterisk, warm_speech: None
) -> None:
    live = live_ari
    before = set(lab.recordings_dir.glob("echotalk-*x.wav"))
    call_id = await place_call(live, ECHO_THEN_TALK_PARTY, LONG_GREETING)

    cut = await wait_transcript(live, call_id, lambda m: m["role"] == "assistant", 40)
    assert cut["interrupted"] is True
    assert LONG_GREETING.startswith(cut["content"].rstrip(".…"))
    # The 7 s of echo did not cut it: the greeting went on until the party spoke.
    assert {"opening", "hours", "morning"} <= words(cut["content"]), cut["content"]
    said = await wait_transcript(live, call_id, has_words("invoice"), within=30)
    assert said["role"] == "user"

    await control(live, call_id, {"type": "end-call"})
    await wait_recorded(live, call_id, within=15)

    heard, rate = await read_new_recording(lab.recordings_dir, "echotalk-*-rx.wav", before)
    sent, _ = await read_new_recording(lab.recordings_dir, "echotalk-*-tx.wav", before)
    talked_at = talk_started_at(heard, sent, rate, after_s=TALKS_AT_S - 1.0)
    cut_at = voice_cut_at(heard, rate, after_s=TALKS_AT_S - 1.0)
    print(f"party talked at {talked_at:.2f} s; assistant cut {cut_at - talked_at:.2f} s later")
    assert TALKS_AT_S - 0.5 < talked_at < TALKS_AT_S + 0.5
    assert talked_at < cut_at <= talked_at + MAX_CUT_S


def frame_levels(samples: npt.NDArray[np.float64], rate: int) -> list[float]:
    step = rate // 50  # 20 ms
    return [
        float(np.sqrt(np.mean(samples[i : i + step] ** 2)))
        for i in range(0, len(samples) - step, step)
    ]


def talk_started_at(heard: bytes, sent: bytes, rate: int, *, after_s: float) -> float:
    """When what the party sent stopped being the echo of what it heard (its own words began):
    the first of three loud 20 ms frames that match nothing heard in the 100 ms before."""
    rx = np.frombuffer(heard, dtype="<i2").astype(np.float64)
    tx = np.frombuffer(sent, dtype="<i2").astype(np.float64)
    step, back = rate // 50, rate // 10
    run = 0
    for index, level in enumerate(frame_levels(tx, rate)):
        start = index * step
        if index < after_s * 50 or level < LOUD:
            run = 0
            continue
        frame = tx[start : start + step]
        past = rx[max(0, start - back) : start + step]
        if len(past) < step:
            continue
        corr = np.correlate(past, frame, "valid")
        energy = np.convolve(past * past, np.ones(step), "valid")
        ncc = float(np.max(np.abs(corr) / np.sqrt(energy * float(frame @ frame) + 1e-9)))
        run = run + 1 if ncc < 0.8 else 0  # an echo matches at 0.95 and more
        if run == 3:
            return (index - 2) * 0.02
    raise AssertionError("the party never spoke over what it heard")


def voice_cut_at(pcm: bytes, rate: int, *, after_s: float) -> float:
    """When the audio stops for 1 s or more, searching from ``after_s``: the second at which the
    assistant's voice was cut (its sentence pauses are shorter)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    loud = [level > LOUD for level in frame_levels(samples, rate)]
    first, quiet_run = int(after_s * 50), 0
    for index in range(first, len(loud)):
        quiet_run = 0 if loud[index] else quiet_run + 1
        if quiet_run == 50:
            return (index - 49) * 0.02
    raise AssertionError("the assistant's voice never stopped")
