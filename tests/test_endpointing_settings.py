"""``[speech.endpointing]``: checked at start-up, and the timing of every call."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicedock.calls.live.config import conversation_config, with_endpointing_settings
from voicedock.config import ConfigError, EndpointingSettings, load_settings
from voicedock.domain.assistant_config import config_of
from voicedock.pipeline.hearing.endpointing import EndpointingConfig

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).resolve().parents[1] / "voicedock.example.toml"


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("mode = 'eager'\n", "speech.endpointing.mode"),
        ("complete_silence_ms = 50\n", "speech.endpointing.complete_silence_ms"),
        ("incomplete_silence_ms = 9000\n", "speech.endpointing.incomplete_silence_ms"),
        ("end_silence_ms = 'long'\n", "speech.endpointing.end_silence_ms"),
        ("end_silence_ms = 1200\n", "speech.endpointing.end_silence_ms"),  # above incomplete
        ("turn_detection = 'vibes'\n", "speech.endpointing.turn_detection"),
        ("model_floor_ms = 2500\n", "speech.endpointing.model_floor_ms"),  # above the wait
    ],
)
def test_a_bad_value_stops_start_up_naming_the_key(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[speech.endpointing]\n" + toml)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(path, environ={})


def test_the_settings_reach_every_call() -> None:
    environ = {
        "VOICEDOCK_SPEECH__ENDPOINTING__MODE": "fixed",
        "VOICEDOCK_SPEECH__ENDPOINTING__END_SILENCE_MS": "700",
    }
    settings = load_settings(None, environ=environ).speech.endpointing
    timing = with_endpointing_settings(None, settings).endpointing
    assert (timing.mode, timing.end_silence_ms) == ("fixed", 700)
    assert timing.silence_timeout_ms == EndpointingConfig().silence_timeout_ms  # untouched


def test_the_turn_model_settings_reach_every_call() -> None:
    environ = {
        "VOICEDOCK_SPEECH__ENDPOINTING__TURN_DETECTION": "model",
        "VOICEDOCK_SPEECH__ENDPOINTING__MODEL_FLOOR_MS": "250",
        "VOICEDOCK_SPEECH__ENDPOINTING__MODEL_WAIT_MS": "1500",
    }
    settings = load_settings(None, environ=environ).speech.endpointing
    timing = with_endpointing_settings(None, settings).endpointing
    assert (timing.turn_detection, timing.model_floor_ms, timing.model_wait_ms) == (
        "model",
        250,
        1500,
    )


def test_the_defaults_and_the_example_agree_with_the_pipeline() -> None:
    example = load_settings(EXAMPLE, environ={}).speech.endpointing
    assert example == EndpointingSettings()
    timing = with_endpointing_settings(None, example).endpointing
    # The service's calls, like a pipeline made on its own, detect turns by silence unless
    # the operator or the assistant asks for the turn model.
    assert timing.turn_detection == "silence"
    assert timing == EndpointingConfig()


@pytest.mark.parametrize(
    ("operator", "assistant", "installed", "decided"),
    [
        ("model", None, True, "model"),  # left out: the operator's
        ("silence", None, True, "silence"),
        ("silence", "model", True, "model"),  # the assistant's own
        ("model", "silence", True, "silence"),
        ("model", None, False, "silence"),  # no turn model on the node
        ("model", "model", False, "silence"),
    ],
)
def test_a_calls_turn_detection(
    monkeypatch: pytest.MonkeyPatch,
    operator: str,
    assistant: str | None,
    installed: bool,
    decided: str,
) -> None:
    monkeypatch.setattr("voicedock.pipeline.hearing.turn_model.installed", lambda: installed)
    base = with_endpointing_settings(None, EndpointingSettings(turn_detection=operator))
    config = config_of({} if assistant is None else {"turn_detection": assistant})
    assert conversation_config(config, 8000, base=base).endpointing.turn_detection == decided
