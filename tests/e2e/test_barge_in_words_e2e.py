"""Barge-in on words, not noises, on the real lab Asterisk: the backchannel party coughs (a
synthesized noise burst: no voice says one) and says "Mm, okay." while the assistant speaks,
then "Sorry, one more question." The far end's recording shows the greeting going on after the
cough and the backchannel, and stopping within 300 ms of the real interruption."""

from __future__ import annotations

import pytest

from e2e.audio_helpers import read_new_recording, require_offline_speech, wait_transcript, words
from e2e.conftest import LiveService
from e2e.test_audio_e2e import (
    LONG_GREETING,
    control,
    place_call,
    wait_recorded,
    warm_speech,  # noqa: F401 - a fixture, used by name
)
from voicedock.pipeline.audio import rms_dbfs
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

BACKCHANNEL_PARTY = "+31612345663"
FRAME = 160 * 2  # 20 ms at 8 kHz, 16-bit
LOUD_DBFS = -40.0


@pytest.fixture(autouse=True)
def _offline_speech() -> None:
    require_offline_speech()


def loud_frames(pcm: bytes) -> list[bool]:
    return [rms_dbfs(pcm[i : i + FRAME]) > LOUD_DBFS for i in range(0, len(pcm) - FRAME + 1, FRAME)]


def onsets(loud: list[bool], quiet_before: int) -> list[int]:
    """The frames where a sound starts after at least ``quiet_before`` quiet frames."""
    found, quiet = [], quiet_before
    for index, on in enumerate(loud):
        if on and quiet >= quiet_before:
            found.append(index)
        quiet = 0 if on else quiet + 1
    return found


def sounding(loud: list[bool], start: int, end: int) -> bool:
    """Any sound between frames ``start`` and ``end``."""
    return any(loud[max(0, start) : end])


def pause_after(loud: list[bool], start: int, within: int) -> tuple[int, int] | None:
    """The first pause (10 quiet frames or more) beginning within ``within`` frames of
    ``start``: (its first frame, its length in frames)."""
    for index in range(start, min(len(loud), start + within)):
        if not any(loud[index : index + 10]):
            end = index
            while end < len(loud) and not loud[end]:
                end += 1
            return index, end - index
    return None


def last_sound_before_quiet(loud: list[bool], start: int, quiet: int) -> int:
    """The last loud frame from ``start`` on that ``quiet`` quiet frames follow."""
    last = start
    for index in range(start, len(loud)):
        if loud[index]:
            last = index
        elif index - last >= quiet:
            return last
    return last


@pytest.mark.usefixtures("warm_speech")
async def test_a_cough_and_a_backchannel_do_not_cut_the_assistant_words_do_at_once(
    live_ari: LiveService, lab: LabAsterisk
) -> None:
    live = live_ari
    rx_before = set(lab.recordings_dir.glob("backchannel-*-rx.wav"))
    tx_before = set(lab.recordings_dir.glob("backchannel-*-tx.wav"))
    call_id = await place_call(live, BACKCHANNEL_PARTY, LONG_GREETING, barge_in_on_words=True)
    cut = await wait_transcript(live, call_id, lambda m: m["role"] == "assistant", within=40)
    said = await wait_transcript(live, call_id, lambda m: m["role"] == "user", within=25)
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=30)

    # Only the words are the caller's turn: the cough and the backchannel are not in it.
    assert "question" in words(said["content"]), said
    users = [m["content"] for m in ended["messages"] if m["role"] == "user"]
    assert len(users) == 1, users
    assert "okay" not in words(users[0]), users
    heard, rate = await read_new_recording(lab.recordings_dir, "backchannel-*-rx.wav", rx_before)
    played, _ = await read_new_recording(lab.recordings_dir, "backchannel-*-tx.wav", tx_before)
    assert rate == 8000
    print(f"heard {len(heard) / 16:.0f} ms, played {len(played) / 16:.0f} ms; {cut['content']!r}")
    assistant, party = loud_frames(heard), loud_frames(played)
    cough, okay, question = onsets(party, quiet_before=50)[:3]  # 1 s of quiet before each
    # The greeting is heard again after each pause: before the backchannel, before the words.
    # It paused for the backchannel while its words were judged, then went on.
    paused = pause_after(assistant, okay, within=25)
    assert paused is not None, "the greeting did not pause for the backchannel"
    print(f"paused {(paused[0] - okay) * 20} ms after the backchannel began, {paused[1] * 20} ms")
    print(f"and after the cough: {pause_after(assistant, cough, within=25)} (frame, frames)")
    assert sounding(assistant, okay - 25, okay), "the greeting did not go on after the cough"
    assert sounding(assistant, question - 25, question), "nor after the backchannel"
    stopped = last_sound_before_quiet(assistant, question, quiet=40)
    latency_ms = (stopped - question + 1) * 20
    print(
        f"cough at {cough * 20} ms, backchannel {okay * 20} ms, words {question * 20} ms; "
        f"the assistant stopped {latency_ms} ms after the words began"
    )
    assert latency_ms <= 300
    # The greeting was cut by the words, not before: it went on past the cough and "okay".
    assert cut["interrupted"] is True
    assert LONG_GREETING.startswith(cut["content"].rstrip(".…"))
    # (A cough that cut it would have left at most "Hello and welcome to the city library.")
    assert "opening" in words(cut["content"]), cut["content"]
