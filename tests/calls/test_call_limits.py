"""Per-assistant call limits: silence timeout and maximum duration, validated and applied."""

from __future__ import annotations

import pytest

from voicedock.calls.assistants.config import check_config, resolve_provider
from voicedock.calls.live.config import conversation_config
from voicedock.config import SpeechSettings
from voicedock.domain.assistant_config import config_of
from voicedock.errors import BadRequest

pytestmark = pytest.mark.unit


def test_limits_reach_the_endpointing_settings() -> None:
    config = check_config(
        {"silence_timeout_seconds": 8, "max_duration_seconds": 120}, "body", allow_profile=False
    )
    cfg = conversation_config(config_of(config), 8000)
    assert cfg.endpointing.silence_timeout_ms == 8000
    assert cfg.endpointing.max_duration_ms == 120_000


def test_defaults_stay_without_limits() -> None:
    cfg = conversation_config(config_of({}), 8000)
    assert cfg.endpointing.silence_timeout_ms == 30_000
    assert cfg.endpointing.max_duration_ms == 600_000


@pytest.mark.parametrize(
    "body",
    [
        {"silence_timeout_seconds": 1},
        {"silence_timeout_seconds": "10"},
        {"silence_timeout_seconds": True},
        {"max_duration_seconds": 10**6},
    ],
)
def test_out_of_range_limits_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        check_config(dict(body), "body", allow_profile=False)


async def test_operator_whisper_model_directory_reaches_the_stt_engine_only() -> None:
    """The operator's model directory goes to the engine when the call's providers are built;
    an assistant naming its own is refused (host settings are the operator's)."""
    from voicedock.calls.live.providers import build_providers

    speech = SpeechSettings(whisper_model_path="/srv/models/whisper-small")
    resolved = resolve_provider({"provider": "offline"}, speech)
    assert resolved["stt_config"] == {"provider": "faster_whisper"}  # nothing of the host
    stt = (await build_providers(config_of(resolved), speech)).stt
    assert getattr(getattr(stt, "_config", None), "model_path", None) == "/srv/models/whisper-small"
    with pytest.raises(BadRequest, match=r"stt_config\.model_path is set by the operator"):
        resolve_provider({"stt_config": {"provider": "offline", "model_path": "/x"}}, speech)
