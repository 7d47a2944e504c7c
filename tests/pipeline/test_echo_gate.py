"""The echo gate on generated audio: the assistant's own voice returned with a delay and an
attenuation (and line noise) never barges in; another voice spoken over that echo does, within
a bounded time of its first syllable."""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
import pytest

from voicedock.pipeline.frames import Interruption, UserSpeechStarted
from voicedock.pipeline.hearing.echo import EchoGate, EchoGateConfig
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.hearing.listener import Listener
from voicedock.pipeline.hearing.vad import VadConfig

from .synth import espeak, frames, noise

pytestmark = pytest.mark.unit

RATE = 8000
EP = EndpointingConfig(silence_timeout_ms=None, max_duration_ms=None)
ASSISTANT = (
    "Hello and welcome to the city library. Our opening hours are from nine in the morning "
    "until six in the evening, from Monday to Saturday."
)
CALLER = "Excuse me, I would like to speak to a person about my appointment."
# What telling a voice from the echo under it may add to the barge-in of the same voice on a
# clean line (which needs 240 ms of speech): the syllables the echo masks.
MAX_ADDED_MS = 200


@functools.cache
def _speech(text: str, voice: str) -> npt.NDArray[np.float64]:
    pcm = espeak(text, RATE, voice)
    if pcm is None:
        pytest.skip("espeak-ng is not installed")
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def assistant() -> npt.NDArray[np.float64]:
    return _speech(ASSISTANT, "en-us")


def caller() -> npt.NDArray[np.float64]:
    return _speech(CALLER, "en-gb+f3")


def echo_line(delay_ms: int, attenuation_db: float, noise_level: float) -> npt.NDArray[np.float64]:
    """What an echoing line sends back while the assistant speaks."""
    sent = assistant()
    line = np.concatenate((np.zeros(delay_ms * RATE // 1000), sent))[: len(sent)]
    line = line * 10 ** (attenuation_db / 20)
    if noise_level:
        hiss = np.frombuffer(noise(len(sent) * 1000 // RATE + 20, RATE, noise_level), "<i2")
        line = line + hiss[: len(line)]
    return line


def pcm(samples: npt.NDArray[np.float64]) -> bytes:
    return bytes(np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes())


def listen(
    line: npt.NDArray[np.float64], echo: EchoGateConfig | None = None, *, played: bool = True
) -> list[object]:
    """Feed the line to a listener that played the assistant's audio; the decisions, in order."""
    listener = Listener(RATE, endpointing=EP, echo=echo)
    if played:
        listener.echo.play(pcm(assistant()))
    out: list[object] = []
    for frame in frames(pcm(line), RATE):
        out.extend(listener.process(frame, assistant_audible=True))
    return out


def first_syllable_ms(samples: npt.NDArray[np.float64]) -> float:
    """Where the voice starts: the first 10 ms above -40 dBFS."""
    step = RATE // 100
    for i in range(0, len(samples) - step, step):
        if np.sqrt(np.mean(samples[i : i + step] ** 2)) > 32768 * 0.01:
            return i * 1000 / RATE
    raise AssertionError("no voice")


@pytest.mark.parametrize("delay_ms", [0, 120, 250, 400])
@pytest.mark.parametrize("attenuation_db", [-6.0, -12.0, -20.0])
@pytest.mark.parametrize("noise_level", [0.0, 0.003])
def test_the_assistants_own_voice_coming_back_is_not_a_barge_in(
    delay_ms: int, attenuation_db: float, noise_level: float
) -> None:
    line = echo_line(delay_ms, attenuation_db, noise_level)
    assert listen(line) == []
    # Without the gate the same line barges in: the audio is loud and long enough to.
    ungated = listen(line, EchoGateConfig(enabled=False))
    assert any(isinstance(event, Interruption) for event in ungated)


@pytest.mark.parametrize("delay_ms", [0, 250, 400])
@pytest.mark.parametrize("attenuation_db", [-6.0, -12.0, -20.0])
@pytest.mark.parametrize("caller_at_ms", [2500, 4100])
def test_a_voice_over_the_echo_barges_in_within_the_bound(
    delay_ms: int, attenuation_db: float, caller_at_ms: int
) -> None:
    line = echo_line(delay_ms, attenuation_db, 0.002)
    voice = caller()
    start = caller_at_ms * RATE // 1000
    line[start : start + len(voice)] += voice[: len(line) - start]
    alone = np.zeros(len(line))
    alone[start : start + len(voice)] = voice[: len(line) - start]

    events = listen(line)
    clean = barge_in_ms(listen(alone, played=False), caller_at_ms)  # the same voice, no echo

    latency_ms = barge_in_ms(events, caller_at_ms)
    print(f"barge-in {latency_ms:.0f} ms after the first syllable (clean line: {clean:.0f} ms)")
    assert 0 < latency_ms <= clean + MAX_ADDED_MS
    assert isinstance(events[0], UserSpeechStarted)


# Where the assistant's audio went out later than the gate laid it out: a media leg that sends
# each frame when it is due (RTP, AudioSocket) re-anchors its schedule after the node stalled
# for more than three frames, so every stall during a reply delays the rest of it.
STALLS_AT_MS = (1500, 3000, 4500, 6000)
PATH_MS = 100


def stalled_echo(
    stall_ms: int, stalls_at_ms: tuple[int, ...] = STALLS_AT_MS
) -> npt.NDArray[np.float64]:
    """What an echoing line sends back when the reply went out with a pause of ``stall_ms``
    at each of ``stalls_at_ms`` (its echo later and later, by up to their sum)."""
    sent, pieces, last = assistant(), [], 0
    for at in (ms * RATE // 1000 for ms in stalls_at_ms):
        pieces += [sent[last:at], np.zeros(stall_ms * RATE // 1000)]
        last = at
    went_out = np.concatenate([*pieces, sent[last:]])
    return np.concatenate((np.zeros(PATH_MS * RATE // 1000), went_out)) * 10 ** (-12 / 20)


@pytest.mark.parametrize("stall_ms", [150, 200, 300])
def test_an_echo_that_comes_back_later_and_later_is_still_not_a_barge_in(stall_ms: int) -> None:
    # By the end of the reply its echo comes back after longer than the configured path.
    assert PATH_MS + len(STALLS_AT_MS) * stall_ms > EchoGateConfig().max_delay_ms
    assert listen(stalled_echo(stall_ms)) == []


def test_a_voice_over_an_echo_that_came_back_later_barges_in_within_the_bound() -> None:
    line = stalled_echo(200, STALLS_AT_MS[:3])  # 700 ms late from 4.5 s on
    caller_at_ms = 6000
    voice, start = caller(), caller_at_ms * RATE // 1000
    line[start : start + len(voice)] += voice[: len(line) - start]
    alone = np.zeros(len(line))
    alone[start : start + len(voice)] = voice[: len(line) - start]
    clean = barge_in_ms(listen(alone, played=False), caller_at_ms)
    assert 0 < barge_in_ms(listen(line), caller_at_ms) <= clean + MAX_ADDED_MS


def barge_in_ms(events: list[object], caller_at_ms: int) -> float:
    """From the caller's first syllable to the barge-in."""
    interruptions = [e for e in events if isinstance(e, Interruption)]
    assert interruptions, "the caller never barged in"
    return interruptions[0].at_ms - caller_at_ms - first_syllable_ms(caller())


def test_at_16_khz_the_echo_is_ignored_and_a_voice_over_it_barges_in() -> None:
    rate = 16000
    said, voice = espeak(ASSISTANT, rate), espeak(CALLER, rate, "en-gb+f3")
    if said is None or voice is None:
        pytest.skip("espeak-ng is not installed")
    sent = np.frombuffer(said, dtype="<i2").astype(np.float64)
    delay = rate * 250 // 1000
    line = np.concatenate((np.zeros(delay), sent))[: len(sent)] * 10 ** (-12 / 20)

    def barge_ins(audio: npt.NDArray[np.float64]) -> list[Interruption]:
        listener = Listener(rate, vad=VadConfig(sample_rate=rate), endpointing=EP)
        listener.echo.play(said)
        events = [e for f in frames(pcm(audio), rate) for e in listener.process(f, True)]
        return [e for e in events if isinstance(e, Interruption)]

    assert barge_ins(line) == []
    start = rate * 2500 // 1000
    other = np.frombuffer(voice, dtype="<i2").astype(np.float64)
    line[start : start + len(other)] += other[: len(line) - start]
    (first, *_) = barge_ins(line)
    assert 2500 < first.at_ms <= 2500 + 340 + MAX_ADDED_MS


def test_the_caller_alone_is_never_taken_for_echo() -> None:
    """Nothing sent that could come back: the gate stays out of the way."""
    gate = EchoGate(RATE)
    voice = pcm(caller())
    for frame in frames(voice, RATE):
        gate.hear(frame)
        assert not gate.is_echo()
    assert not gate.active


def test_audio_cut_by_a_barge_in_is_not_expected_back() -> None:
    gate = EchoGate(RATE)
    gate.play(pcm(assistant()))
    for frame in frames(pcm(assistant())[: RATE * 2], RATE):  # 1 s played, echoed at once
        gate.hear(frame)
        assert gate.is_echo()
    gate.cut()  # the rest was flushed: the line now carries only what was played
    for frame in frames(pcm(np.zeros(RATE)), RATE):  # the echo path's length of silence
        gate.hear(frame)
    assert not gate.active


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match=r"echo\.max_delay_ms"):
        EchoGateConfig(max_delay_ms=0)
    with pytest.raises(ValueError, match=r"echo\.correlation"):
        EchoGateConfig(correlation=1.0)
    with pytest.raises(ValueError, match=r"echo\.window_ms"):
        EchoGateConfig(window_ms=5)
    with pytest.raises(ValueError, match=r"echo\.min_cancel_db"):
        EchoGateConfig(min_cancel_db=-1)
    with pytest.raises(ValueError, match=r"echo\.lead_ms"):
        EchoGateConfig(lead_ms=-1)


@pytest.mark.parametrize("rate", [8000, 16000])
def test_the_window_matched_is_the_latest_audio_heard_whatever_the_chunks(rate: int) -> None:
    # hear() keeps the chunks as they came and decodes only when a match is asked for.
    gate = EchoGate(rate)
    rng = np.random.default_rng(3)
    audio = (rng.standard_normal(rate) * 3000).astype("<i2")
    pos = 0
    for size in rng.integers(1, 200, size=60) * 2:
        gate.hear(audio[pos : pos + size].tobytes())
        pos += size
        step = rate // 8000
        heard = audio[:pos].astype(np.float64) / 32768.0
        matched = heard[: len(heard) - len(heard) % step].reshape(-1, step).mean(axis=1)
        expected = np.concatenate((np.zeros(gate._window), matched))[-gate._window :]
        assert np.allclose(gate._inbound(), expected)
