"""``[pbx.asterisk.transfer]``: loaded, validated with the key named, and wired into the PBX."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicedock.config import load_settings
from voicedock.errors import ConfigError
from voicedock.pbx.asterisk.transfers.context import TransferSettings

pytestmark = pytest.mark.unit


def test_defaults_match_the_adapter_defaults() -> None:
    settings = TransferSettings.from_config(load_settings(None, environ={}).pbx.asterisk)
    plain = TransferSettings("voicedock", "voicedock-transfers")
    assert settings == plain
    assert settings.voice_decision is True


def test_the_table_reaches_the_transfer_settings(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        "[pbx.asterisk]\napp = 'vd'\ntransfer_context = 'xfer'\n"
        "[pbx.asterisk.transfer]\nhold_media = 'moh:default'\nanswer_timeout_seconds = 45\n"
        "decision_timeout_seconds = 10\nvoice_decision = false\n"
    )
    settings = TransferSettings.from_config(load_settings(cfg, environ={}).pbx.asterisk)
    assert settings == TransferSettings(
        "vd",
        "xfer",
        answer_timeout=45,
        decision_timeout=10.0,
        hold_media="moh:default",
        voice_decision=False,
    )


def test_environment_overrides_and_empty_hold_media() -> None:
    env = {
        "VOICEDOCK_PBX__ASTERISK__TRANSFER__VOICE_DECISION": "false",
        "VOICEDOCK_PBX__ASTERISK__TRANSFER__HOLD_MEDIA": "",
    }
    transfer = load_settings(None, environ=env).pbx.asterisk.transfer
    assert transfer.voice_decision is False
    assert transfer.hold_media == ""


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("hold_media = 'ring'", "hold_media"),
        ("hold_media = 'tone:ring,x'", "hold_media"),
        ("hold_media = 'moh: default'", "hold_media"),
        ("answer_timeout_seconds = 2", "answer_timeout_seconds"),
        ("answer_timeout_seconds = 301", "answer_timeout_seconds"),
        ("decision_timeout_seconds = 0", "decision_timeout_seconds"),
        ("decision_timeout_seconds = 'soon'", "decision_timeout_seconds"),
        ("voice_decision = 'maybe'", "voice_decision"),
        ("hold = 'tone:ring'", "hold"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, line: str, key: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f"[pbx.asterisk.transfer]\n{line}\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, environ={})
    assert exc.value.key == f"pbx.asterisk.transfer.{key}"
