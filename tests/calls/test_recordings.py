"""Where recordings live and how long they stay (``calls/recordings.py``)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from voicedock.calls.recordings import recording_file, recording_name, sweep, wants_recording
from voicedock.config import ConfigError, RecordingsSettings, load_settings
from voicedock.domain.assistant_config import config_of

pytestmark = pytest.mark.unit

CALL = "call-outbound-0123456789abcdef"


def test_a_call_is_recorded_under_its_organization(tmp_path: Path) -> None:
    settings = RecordingsSettings(directory=str(tmp_path), format="flac")
    name = recording_name(settings, "acme", CALL)
    assert name == f"acme/{CALL}.flac"
    assert recording_file(settings, name) == (tmp_path / name).resolve()
    assert recording_file(settings, "../outside.wav") is None
    assert recording_file(RecordingsSettings(), name) is None  # recordings off
    assert wants_recording(config_of({"record": True}))
    assert not wants_recording(config_of({"record": False}))


def test_sweep_deletes_only_recordings_older_than_the_retention(tmp_path: Path) -> None:
    now = time.time()
    old, new, other = tmp_path / "acme/a.wav", tmp_path / "acme/b.flac", tmp_path / "acme/c.txt"
    for path in (old, new, other):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x")
        os.utime(path, (now - 3 * 86_400, now - 3 * 86_400))
    os.utime(new, (now - 86_400, now - 86_400))
    settings = RecordingsSettings(directory=str(tmp_path), retention_days=2)
    assert sweep(settings, now) == 1
    assert not old.exists()
    assert new.exists()
    assert other.exists()
    assert sweep(RecordingsSettings(directory=str(tmp_path)), now) == 0  # 0 keeps them


@pytest.mark.parametrize(
    ("line", "key"),
    [('format = "mp3"', "recordings.format"), ("retention_days = -1", "recordings.retention_days")],
)
def test_a_bad_recordings_setting_stops_start_up_naming_the_key(
    tmp_path: Path, line: str, key: str
) -> None:
    config = tmp_path / "voicedock.toml"
    config.write_text(f"[recordings]\n{line}\n")
    with pytest.raises(ConfigError, match=key):
        load_settings(config, environ={})
