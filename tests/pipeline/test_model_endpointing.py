"""Semantic end of turn in the endpointer: the silence that ends a turn follows what the turn
model heard at the pause, combined with how the turn's words read."""

from __future__ import annotations

import dataclasses

import pytest

from voicedock.pipeline.frames import UserSpeechStopped
from voicedock.pipeline.hearing.endpointing import Endpointer, EndpointingConfig

pytestmark = pytest.mark.unit

CFG = EndpointingConfig(
    silence_timeout_ms=None,
    max_duration_ms=None,
    turn_detection="model",
    complete_silence_ms=400,
    model_floor_ms=300,
    model_wait_ms=2000,
)
UNASKED = "unasked"


def turn_end(
    ep: Endpointer,
    *,
    heard: bool | str | None,
    reads: bool | None = None,
    asked_at_ms: int = 60,
    heard_at_ms: int = 120,
) -> int:
    """Speak 1 s, pause; the model is asked after ``asked_at_ms`` of the pause and answers
    ``heard`` (``UNASKED``: never asked) after ``heard_at_ms``; the words read as ``reads``
    from the start of the pause. The silence waited when the turn ended."""
    for _ in range(50):
        ep.process(True)
    for n in range(1, 300):
        for event in ep.process(False):
            if isinstance(event, UserSpeechStopped):
                return event.decided_at_ms - event.ended_at_ms
        if n == 1:
            ep.hint_complete(reads)
        if n * 20 == asked_at_ms and heard != UNASKED:
            ep.asked_model()
        if n * 20 == heard_at_ms and heard != UNASKED:
            assert not isinstance(heard, str)
            ep.hint_model(heard)
    raise AssertionError("the turn never ended")


@pytest.mark.parametrize(
    ("heard", "reads", "waited"),
    [
        (True, None, 300),  # finished: the short floor
        (True, True, 300),
        (False, None, 2000),  # unfinished: the bound
        (False, False, 2000),
        (True, False, 1000),  # finished, but the words trail off ("and", "um")
        (False, True, 1000),  # unfinished, but the words read as a finished sentence
        (None, None, 600),  # the model could not tell: the silence rules
        (None, True, 400),
        (UNASKED, False, 1000),
    ],
)
def test_the_silence_waited_follows_the_model_and_the_words(
    heard: bool | str | None, reads: bool | None, waited: int
) -> None:
    assert turn_end(Endpointer(CFG), heard=heard, reads=reads) == waited


def test_a_turn_waits_for_the_models_answer_up_to_the_bound() -> None:
    # Asked at 60 ms, answered "finished" after 1.5 s: the turn ends with the next frame.
    assert turn_end(Endpointer(CFG), heard=True, heard_at_ms=1500) == 1520
    # Never answered: the bound, past every silence rule.
    assert turn_end(Endpointer(CFG), heard=True, heard_at_ms=5000) == 2000


def test_silence_detection_ignores_the_model() -> None:
    silence = dataclasses.replace(CFG, turn_detection="silence")
    assert turn_end(Endpointer(silence), heard=True) == 600
    assert turn_end(Endpointer(silence), heard=False, reads=True) == 400


def test_speech_after_the_answer_forgets_it() -> None:
    ep = Endpointer(CFG)
    for _ in range(50):
        ep.process(True)
    for _ in range(5):
        ep.process(False)
    assert ep.pause_started_ms == 1000
    ep.asked_model()
    ep.hint_model(False)
    ep.process(True)  # the caller goes on: the answer was about a pause that is over
    assert ep.pause_started_ms is None
    ep.hint_model(True)  # an answer outside a pause is ignored
    waited = 0
    while not any(isinstance(e, UserSpeechStopped) for e in ep.process(False)):
        waited += 20
    assert waited + 20 == 600


def test_config_bounds() -> None:
    with pytest.raises(ValueError, match="turn_detection"):
        EndpointingConfig(turn_detection="vibes")
    with pytest.raises(ValueError, match="model_floor_ms"):
        EndpointingConfig(model_floor_ms=3000, model_wait_ms=2000)
