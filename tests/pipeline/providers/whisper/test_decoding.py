"""Whisper on a short encoder context: the frames it gets and the degenerate-output guard."""

from __future__ import annotations

import pytest

from voicedock.domain.assistant_config import SttConfig
from voicedock.pipeline.providers.base import ProviderConfigError
from voicedock.pipeline.providers.section import decoded
from voicedock.pipeline.providers.whisper.decoding import (
    FULL_CONTEXT_FRAMES,
    context_frames,
    degenerate,
    token_budget,
)
from voicedock.pipeline.providers.whisper.stt import WhisperStt

pytestmark = pytest.mark.unit


def test_context_is_the_audio_plus_a_margin_within_bounds() -> None:
    assert context_frames(413) == 900  # 4.1 s: + 400 frames, whole hundreds
    assert context_frames(700) == 1100
    assert context_frames(63) == 600  # short words need some context not to repeat
    assert context_frames(2700) == FULL_CONTEXT_FRAMES


def test_token_budget_grows_with_the_audio() -> None:
    assert token_budget(0.5) == 14
    assert token_budget(7.0) == 66
    assert token_budget(60.0) == 200


@pytest.mark.parametrize(
    "text",
    [
        "Yes. Yes. Yes. Yes. Yes. Yes.",
        "No. No. No.",
        "Yes. Yes.",  # the whole transcript twice
        "Thank you. Thank you.",
        "I want to I want to I want to go.",
        "thank you for calling " * 6,
    ],
)
def test_loops_are_degenerate(text: str) -> None:
    assert degenerate(text, tokens=len(text.split()), budget=200)


def test_reaching_the_budget_is_degenerate() -> None:
    assert degenerate("Okay", tokens=14, budget=14)


def test_stopping_early_is_degenerate() -> None:
    assert degenerate("I", tokens=1, budget=40, duration_s=3.2)  # a sentence of 3.2 s
    assert not degenerate("Yes.", tokens=2, budget=14, duration_s=0.9)
    assert not degenerate("Can I bring my dog?", tokens=6, budget=20, duration_s=1.6)


@pytest.mark.parametrize(
    "text",
    [
        "Yes.",
        "No, thank you, no.",
        "",
        "I would like to book an appointment on Monday morning, if that is possible for you.",
        "My account number is four five seven two, and I need to change the address.",
    ],
)
def test_speech_is_not_degenerate(text: str) -> None:
    assert not degenerate(text, tokens=len(text.split()) * 2, budget=60)


@pytest.mark.parametrize(
    ("config", "key"),
    [({"encoder_context": "short"}, "encoder_context"), ({"streaming": "yes"}, "streaming")],
)
def test_bad_settings_name_the_key(config: dict[str, object], key: str) -> None:
    with pytest.raises(ProviderConfigError, match=f"stt_config.{key}"):
        WhisperStt(decoded(SttConfig, {"provider": "offline", **config}, "stt_config"))
