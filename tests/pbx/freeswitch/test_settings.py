"""The [pbx.freeswitch] settings: validated at load, and what make_pbx builds from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicedock.calls.transfers.agent import AgentDialogue
from voicedock.config import load_settings
from voicedock.errors import ConfigError
from voicedock.pbx.freeswitch.pbx import FreeswitchPbx
from voicedock.service import make_pbx

pytestmark = pytest.mark.unit

BASE = """
[pbx]
kind = "freeswitch"
[pbx.freeswitch]
esl_password = "not-the-default"
{extra}
[[trunks]]
name = "carrier1"
[[numbers]]
number = "+15557654321"
trunk = "carrier1"
organization = "acme"
"""

TABLE = "[pbx.freeswitch.transfer]\n{}"


def load(tmp_path: Path, extra: str = "") -> object:
    path = tmp_path / "voicedock.toml"
    path.write_text(BASE.format(extra=extra), encoding="utf-8")
    return load_settings(path, environ={})


def test_defaults_and_make_pbx_derives_dids_from_numbers(tmp_path: Path) -> None:
    settings = load(tmp_path)
    fs = settings.pbx.freeswitch  # type: ignore[attr-defined]
    assert (fs.media_host, fs.media_port, fs.transfer_context) == (
        "127.0.0.1",
        8091,
        "voicedock_transfer",
    )
    pbx = make_pbx(settings)  # type: ignore[arg-type]
    assert isinstance(pbx, FreeswitchPbx)
    assert pbx.dids == {"+15557654321"}
    assert pbx.media.server.public_url == "ws://127.0.0.1:8091"


def test_explicit_dids_and_public_url_win(tmp_path: Path) -> None:
    extra = 'dids = ["+15550001111"]\nmedia_public_url = "wss://voicedock.example.net:443"'
    settings = load(tmp_path, extra)
    pbx = make_pbx(settings)  # type: ignore[arg-type]
    assert isinstance(pbx, FreeswitchPbx)
    assert pbx.dids == {"+15550001111"}
    assert pbx.media.server.public_url == "wss://voicedock.example.net:443"


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ('dids = ["15550001111"]', "pbx.freeswitch.dids[0]"),
        ("media_port = 70000", "pbx.freeswitch.media_port"),
        ('media_public_url = "http://x:1"', "pbx.freeswitch.media_public_url"),
        ('media_public_url = "ws://x:1/path ${x}"', "pbx.freeswitch.media_public_url"),
        ('transfer_context = "a b"', "pbx.freeswitch.transfer_context"),
        ("warm_transfer_timeout = 0", "pbx.freeswitch.warm_transfer_timeout"),
        ('esl_password = "ClueCon"', "pbx.freeswitch.esl_password"),
    ],
)
def test_bad_values_are_refused_naming_the_key(tmp_path: Path, extra: str, key: str) -> None:
    if extra.startswith("esl_password"):
        text = BASE.replace('esl_password = "not-the-default"', extra).format(extra="")
        path = tmp_path / "voicedock.toml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("[", r"\[")):
            load_settings(path, environ={})
        return
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("[", r"\[")):
        load(tmp_path, extra)


def test_voice_decision_is_on_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    on = make_pbx(load(tmp_path))  # type: ignore[arg-type]
    assert isinstance(on, FreeswitchPbx)
    assert on.warm.voice_decision is True
    off = make_pbx(load(tmp_path, "voice_decision = false"))  # type: ignore[arg-type]
    assert isinstance(off, FreeswitchPbx)
    assert off.warm.voice_decision is False


def test_the_transfer_table_and_the_old_flat_keys_say_the_same(tmp_path: Path) -> None:
    table = load(tmp_path, TABLE.format("timeout_seconds = 12\nvoice_decision = false"))
    flat = load(tmp_path, "warm_transfer_timeout = 12\nvoice_decision = false")
    default = load(tmp_path)
    for settings in (table, flat):
        fs = settings.pbx.freeswitch  # type: ignore[attr-defined]
        assert (fs.transfer.timeout_seconds, fs.transfer.voice_decision) == (12, False)
        pbx = make_pbx(settings)  # type: ignore[arg-type]
        assert isinstance(pbx, FreeswitchPbx)
        assert pbx.warm.voice_decision is False
    transfer = default.pbx.freeswitch.transfer  # type: ignore[attr-defined]
    assert (transfer.timeout_seconds, transfer.voice_decision) == (30, True)


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        (
            "warm_transfer_timeout = 12\n" + TABLE.format("timeout_seconds = 12"),
            "pbx.freeswitch.warm_transfer_timeout",
        ),
        (
            "voice_decision = true\n" + TABLE.format("voice_decision = false"),
            "pbx.freeswitch.voice_decision",
        ),
        (TABLE.format("timeout_seconds = 0"), "pbx.freeswitch.transfer.timeout_seconds"),
        ("warm_transfer_timeout = 'soon'", "pbx.freeswitch.warm_transfer_timeout"),
    ],
)
def test_a_transfer_setting_given_twice_or_bad_names_its_key(
    tmp_path: Path, extra: str, key: str
) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load(tmp_path, extra)


def test_the_old_flat_transfer_keys_work_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "voicedock.toml"
    path.write_text(BASE.format(extra=""), encoding="utf-8")
    env = {"VOICEDOCK_PBX__FREESWITCH__WARM_TRANSFER_TIMEOUT": "7"}
    assert load_settings(path, environ=env).pbx.freeswitch.transfer.timeout_seconds == 7


def test_make_pbx_hands_the_adapter_the_warm_transfer_dialogue(tmp_path: Path) -> None:
    pbx = make_pbx(load(tmp_path))  # type: ignore[arg-type]
    assert isinstance(pbx, FreeswitchPbx)
    assert isinstance(pbx.warm.dialogue, AgentDialogue)  # the offline voice and recognizer
