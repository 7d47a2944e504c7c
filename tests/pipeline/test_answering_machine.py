"""Answering-machine detection on generated greetings: espeak-ng voices, synthetic beeps."""

from __future__ import annotations

import shutil

import pytest

from voicedock.pipeline.hearing.answering_machine import (
    HUMAN,
    MACHINE,
    UNKNOWN,
    AmdConfig,
    AmdEvent,
    AnsweringMachineDetector,
    GreetingEnded,
)
from voicedock_lab.greetings import (
    MACHINE_TEXTS,
    PERSON_TEXTS,
    Voice,
    beep,
    machine_greeting,
    person_hello,
    silence,
)

from .synth import noise

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]

RATE = 8000
VOICES = (Voice("en-us", 165), Voice("en-gb-scotland", 140), Voice("en-us+f3", 190))


def feed(audio: bytes, *, wait: bool = False, chunk: int = 320) -> list[AmdEvent]:
    detector = AnsweringMachineDetector(AmdConfig(sample_rate=RATE), wait_for_greeting=wait)
    events: list[AmdEvent] = []
    for start in range(0, len(audio), chunk):
        events += detector.process(audio[start : start + chunk])
    return events


@pytest.mark.parametrize("voice", VOICES, ids=lambda v: v.name)
@pytest.mark.parametrize("text", MACHINE_TEXTS[:2])
def test_a_recorded_greeting_is_a_machine_and_the_beep_ends_it(voice: Voice, text: str) -> None:
    audio, greeting_end_s = machine_greeting(text, voice, RATE, beep_hz=1000.0)
    decision, ended = feed(audio, wait=True)
    assert decision.result == MACHINE  # type: ignore[union-attr]
    assert decision.decided_at_ms <= 3500  # type: ignore[union-attr]
    assert isinstance(ended, GreetingEnded)
    assert ended.beep
    assert ended.beep_hz == pytest.approx(1000, abs=50)
    # Right after the beep: a message starts neither over the beep nor long after it.
    assert 0 <= ended.at_ms / 1000 - greeting_end_s <= 0.1


@pytest.mark.parametrize("voice", VOICES, ids=lambda v: v.name)
@pytest.mark.parametrize("text", PERSON_TEXTS)
def test_a_short_hello_then_silence_is_a_human(voice: Voice, text: str) -> None:
    (decision,) = feed(person_hello(text, voice, RATE), wait=True)
    assert decision.result == HUMAN  # type: ignore[union-attr]
    assert decision.decided_at_ms <= 3500  # type: ignore[union-attr]
    evidence = decision.evidence()  # type: ignore[union-attr]
    assert evidence["reason"] == "short-greeting"
    assert 0 < evidence["greeting_ms"] <= 1800  # type: ignore[operator]


def test_without_a_beep_the_greeting_ends_with_its_silence() -> None:
    audio, greeting_end_s = machine_greeting(MACHINE_TEXTS[2], VOICES[0], RATE, beep_hz=None)
    decision, ended = feed(audio, wait=True)
    assert decision.result == MACHINE  # type: ignore[union-attr]
    assert isinstance(ended, GreetingEnded)
    assert not ended.beep
    assert 1.0 <= ended.at_ms / 1000 - greeting_end_s <= 2.0


@pytest.mark.parametrize("hz", [440.0, 1400.0, 1950.0])
def test_a_beep_alone_is_a_machine(hz: float) -> None:
    audio = silence(500, RATE) + beep(hz, 500, RATE) + silence(500, RATE)
    decision, ended = feed(audio, wait=True)
    assert decision.result == MACHINE  # type: ignore[union-attr]
    assert decision.reason == "beep"  # type: ignore[union-attr]
    assert decision.beep_at_ms == pytest.approx(500, abs=40)  # type: ignore[union-attr]
    assert isinstance(ended, GreetingEnded)
    assert ended.at_ms == pytest.approx(1000, abs=40)


def test_nobody_speaking_is_unknown() -> None:
    (decision,) = feed(noise(6000, RATE))
    assert decision.result == UNKNOWN  # type: ignore[union-attr]
    assert decision.reason == "initial-silence"  # type: ignore[union-attr]
    assert decision.initial_silence_ms is None  # type: ignore[union-attr]


def test_chunking_does_not_change_the_decision() -> None:
    audio, _ = machine_greeting(MACHINE_TEXTS[0], VOICES[0], RATE)
    assert feed(audio, wait=True, chunk=320) == feed(audio, wait=True, chunk=1234)
