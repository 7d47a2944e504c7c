"""Adaptive endpointing: the silence that ends a turn follows how the turn reads."""

from __future__ import annotations

import dataclasses

import pytest

from voicedock.pipeline.frames import UserSpeechStopped
from voicedock.pipeline.hearing.endpointing import Endpointer, EndpointingConfig
from voicedock.pipeline.hearing.turn_completion import utterance_complete

pytestmark = pytest.mark.unit

CFG = EndpointingConfig(silence_timeout_ms=None, max_duration_ms=None, complete_silence_ms=300)


def turn_end(ep: Endpointer, *, hint: bool | None, hint_after_ms: int = 100) -> int:
    """Speak 1 s, pause; give ``hint`` after ``hint_after_ms`` of the pause; the silence
    waited when the turn ended."""
    for _ in range(50):
        ep.process(True)
    for n in range(1, 200):
        if n * 20 == hint_after_ms:
            ep.hint_complete(hint)
        for event in ep.process(False):
            if isinstance(event, UserSpeechStopped):
                return event.decided_at_ms - event.ended_at_ms
    raise AssertionError("the turn never ended")


@pytest.mark.parametrize(("hint", "waited"), [(True, 300), (False, 1000), (None, 600)])
def test_the_silence_waited_follows_the_hint(hint: bool | None, waited: int) -> None:
    assert turn_end(Endpointer(CFG), hint=hint) == waited


def test_a_late_hint_ends_the_turn_at_once() -> None:
    # The speculative transcript came after 380 ms of silence, more than a finished turn
    # needs: the turn ends with the next frame.
    assert turn_end(Endpointer(CFG), hint=True, hint_after_ms=400) == 400


def test_fixed_mode_ignores_hints() -> None:
    fixed = dataclasses.replace(CFG, mode="fixed")
    assert turn_end(Endpointer(fixed), hint=True) == 600
    assert turn_end(Endpointer(fixed), hint=False) == 600


def test_speech_after_the_hint_forgets_it() -> None:
    ep = Endpointer(CFG)
    for _ in range(50):
        ep.process(True)
    for _ in range(5):
        ep.process(False)
    ep.hint_complete(True)
    ep.process(True)  # the caller goes on: the hint was about words that are not the end
    waited = 0
    while not any(isinstance(e, UserSpeechStopped) for e in ep.process(False)):
        waited += 20
    assert waited + 20 == 600


def test_a_hint_outside_a_pause_is_ignored() -> None:
    ep = Endpointer(CFG)
    ep.hint_complete(True)  # quiet: no turn to hint about
    for _ in range(50):
        ep.process(True)
    ep.hint_complete(True)  # still speaking: the hint is about a pause that is not there
    assert turn_end(ep, hint=None, hint_after_ms=20) == 600


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"mode": "eager"}, "endpointing.mode"),
        ({"complete_silence_ms": 0}, "endpointing.complete_silence_ms"),
        ({"complete_silence_ms": 900, "incomplete_silence_ms": 800}, "complete_silence_ms"),
    ],
)
def test_bad_settings_name_the_key(config: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        EndpointingConfig(**config)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("Can I bring my dog?", True),
        ("Thank you, that is all.", True),
        ("I would like to book an appointment on Monday!", True),
        ("I would like to book an appointment and", False),
        ("I would like to book an appointment and.", False),  # Whisper's full stop on "and"
        ("So, um.", False),
        ("My number is four five seven,", False),
        ("Well...", False),
        ("I was going to the", False),
        ("I would like to book an appointment", None),  # no punctuation: cannot tell
        ("", None),
        ("...", None),
    ],
)
def test_how_a_turn_reads(text: str, complete: bool | None) -> None:
    assert utterance_complete(text) is complete
