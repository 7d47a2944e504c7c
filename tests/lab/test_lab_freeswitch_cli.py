"""``voicedock lab status | down --pbx freeswitch`` find the lab FreeSWITCH without its sources
(a new shell without ``VOICEDOCK_FREESWITCH_SOURCES``, no ``../shared/freeswitch``, nothing
downloaded): in the cached build where the instance runs, with the settings it was started with.

The lab here is a stand-in process that passes for the instance's FreeSWITCH (the binary's path
and the instance's config path on its command line, its pid file and saved settings where the
lab writes them); tests/freeswitch_lab/test_lab_cli_without_sources.py does the same with the
real one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from voicedock_lab import cli
from voicedock_lab.freeswitch import FREESWITCH, LabFreeswitch
from voicedock_lab.freeswitch_build import MARKER_NAME, FreeswitchBuild
from voicedock_lab.freeswitch_config import FreeswitchLabSettings

pytestmark = pytest.mark.unit

INSTANCE = "shell"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The lab's cache, in a project with nothing beside it and no sources configured."""
    project = tmp_path / "lonely" / "voicedock"
    project.mkdir(parents=True)
    monkeypatch.setenv("VOICEDOCK_PROJECT_DIR", str(project))
    monkeypatch.delenv("VOICEDOCK_FREESWITCH_SOURCES", raising=False)
    return tmp_path / "cache"


def built(cache: Path, key: str) -> FreeswitchBuild:
    build = FreeswitchBuild(cache / f"freeswitch-{key}")
    build.root.mkdir(parents=True)
    (build.root / MARKER_NAME).write_text("format=1\n")
    return build


@pytest.fixture
def running(cache: Path) -> Iterator[tuple[subprocess.Popen[bytes], FreeswitchLabSettings]]:
    """The instance running in the older of two cached builds, on free ports."""
    build = built(cache, "0ld0ld0ld0ld0ld0")
    built(cache, "n3wn3wn3wn3wn3wn")  # newer, as if other sources were found now
    settings = FreeswitchLabSettings(instance=INSTANCE).with_free_ports()
    lab = LabFreeswitch(settings, cache_dir=cache)
    lab._build = build
    lab.instance_dir.mkdir(parents=True)
    lab.saved_path.write_text(settings.to_json())
    process = subprocess.Popen(
        [
            FREESWITCH,
            "-c",
            "import time; time.sleep(60)",
            "-conf",
            f"{settings.instance_path}/conf",
        ],
        executable=sys.executable,
    )
    (lab.instance_dir / "freeswitch.lab.pid").write_text(f"{process.pid}\n")
    try:
        yield process, settings
    finally:
        process.kill()
        process.wait()


def lab(command: str, cache: Path) -> int:
    return cli.main(["lab", command, "--pbx", "freeswitch", "--instance", INSTANCE,
                     "--cache-dir", str(cache)])  # fmt: skip


def test_status_and_down_find_the_running_lab_without_its_sources(
    cache: Path,
    running: tuple[subprocess.Popen[bytes], FreeswitchLabSettings],
    capsys: pytest.CaptureFixture[str],
) -> None:
    process, settings = running
    assert lab("status", cache) == 0
    out = capsys.readouterr().out
    assert f"running: True (pid {process.pid})" in out
    assert f"ESL        127.0.0.1:{settings.esl_port}" in out  # the settings it was started with
    assert lab("down", cache) == 0
    assert process.wait(timeout=5) != 0  # stopped by its signal
    assert lab("status", cache) == 3
    out = capsys.readouterr().out
    assert "built: True" in out
    assert "running: False" in out


def test_status_and_down_with_nothing_built_say_so(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert lab("status", cache) == 3
    captured = capsys.readouterr()
    assert "built: False" in captured.out
    assert "running: False" in captured.out
    assert lab("down", cache) == 0
    assert "sources not found" not in capsys.readouterr().err
