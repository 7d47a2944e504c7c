"""The lab's Asterisk 16 choices: its own chroot and suite, the modules it lacks, its module
directory, its RTP ports, and ``voicedock lab`` finding a running 16 instance."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
from pathlib import Path

import pytest

from voicedock_lab import cli, provision
from voicedock_lab.asterisk_versions import BUILDS, asterisk_build
from voicedock_lab.chroot_process import ChrootDaemon
from voicedock_lab.config import REQUIRED_MODULES, find_project_root, render_files, select_modules
from voicedock_lab.errors import LabError
from voicedock_lab.server import LabAsterisk, module_dir
from voicedock_lab.settings import LabSettings

pytestmark = pytest.mark.unit

PROJECT = find_project_root(Path(__file__))
ABSENT_ON_16 = BUILDS["16"].absent_modules
BULLSEYE_MODDIR = "/usr/lib/asterisk/modules"


def test_16_has_a_chroot_suite_and_lock_of_its_own_beside_22(tmp_path: Path) -> None:
    old = LabSettings(cache_dir=tmp_path)
    new = LabSettings(cache_dir=tmp_path, asterisk="16")
    assert (old.chroot_dir, old.debian_suite) == (tmp_path / "root", "testing")
    assert (new.chroot_dir, new.debian_suite) == (tmp_path / "root-asterisk16", "bullseye")
    assert new.build.lock_name != old.build.lock_name
    # The suite setting is 22's: it never turns the 16 chroot into another Debian.
    assert dataclasses.replace(new, suite="trixie").debian_suite == "bullseye"


def test_an_asterisk_the_lab_has_no_build_of_is_refused() -> None:
    with pytest.raises(ValueError, match="no lab build of Asterisk '18'"):
        LabSettings(asterisk="18")
    with pytest.raises(ValueError, match="have: 22, 16"):
        asterisk_build("20")


def test_a_22_chroot_never_counts_as_a_16_one_nor_the_other_way(tmp_path: Path) -> None:
    for version, other in (("22", "16"), ("16", "22")):
        settings = LabSettings(cache_dir=tmp_path / version, asterisk=version)
        settings.chroot_dir.mkdir(parents=True)
        marker = settings.chroot_dir / provision.MARKER_NAME
        marker.write_text(provision.marker_text(BUILDS[other]))
        assert not provision.is_provisioned(settings)
        marker.write_text(provision.marker_text(BUILDS[version]))
        assert provision.is_provisioned(settings)
    assert "suite=bullseye" in provision.marker_text(BUILDS["16"])


def test_provisioning_16_builds_under_its_own_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[str] = []
    monkeypatch.setattr(provision, "_build", lambda s, log: builds.append(s.debian_suite))
    provision.provision(LabSettings(cache_dir=tmp_path, asterisk="16"), log=False)
    assert builds == ["bullseye"]
    assert (tmp_path / ".provision-asterisk16.lock").exists()
    assert not (tmp_path / ".provision.lock").exists()


def test_modules_16_lacks_are_not_missed_but_22_still_needs_them() -> None:
    bullseye = [name for name in REQUIRED_MODULES if name not in ABSENT_ON_16]
    selection = select_modules(bullseye, ABSENT_ON_16)
    assert selection.missing == ()
    assert not set(selection.load) & ABSENT_ON_16
    assert "chan_websocket" in select_modules(bullseye).missing
    # Anything else missing still stops the lab.
    assert select_modules([*bullseye[1:]], ABSENT_ON_16).missing == (bullseye[0],)


def test_the_16_lab_renders_without_the_modules_it_lacks(tmp_path: Path) -> None:
    settings = LabSettings(cache_dir=tmp_path, instance="unit", asterisk="16")
    available = [name for name in REQUIRED_MODULES if name not in ABSENT_ON_16]
    files = render_files(settings, PROJECT, [*available, "res_ari_channels"], BULLSEYE_MODDIR)
    modules = files["modules.conf"]
    assert "load = chan_rtp.so" in modules
    assert "load = res_ari_channels.so" in modules
    assert not any(f"load = {name}.so" in modules for name in ABSENT_ON_16)
    assert f"astmoddir => {BULLSEYE_MODDIR}\n" in files["asterisk.conf"]
    with pytest.raises(LabError, match="chan_websocket"):
        render_files(dataclasses.replace(settings, asterisk="22"), PROJECT, available, "/x")


def test_the_module_directory_is_the_one_holding_modules(tmp_path: Path) -> None:
    """bullseye's modules live in /usr/lib/asterisk/modules: an empty multiarch directory
    beside it must not be chosen (a wrong astmoddir loads no ARI module on 16)."""
    (tmp_path / "usr/lib/x86_64-linux-gnu/asterisk/modules").mkdir(parents=True)
    bullseye = tmp_path / BULLSEYE_MODDIR.lstrip("/")
    bullseye.mkdir(parents=True)
    (bullseye / "res_ari.so").write_bytes(b"")
    assert module_dir(tmp_path) == (BULLSEYE_MODDIR, ["res_ari"])
    (bullseye / "res_ari.so").unlink()
    with pytest.raises(LabError, match="no Asterisk module directory"):
        module_dir(tmp_path)


def test_a_16_lab_picks_other_rtp_ports_than_the_22_lab_of_the_same_process() -> None:
    old = LabSettings().with_free_ports()
    new = LabSettings(asterisk="16").with_free_ports()
    assert new.asterisk == "16"
    assert new.rtp_end < old.rtp_start or old.rtp_end < new.rtp_start


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_up_takes_the_asterisk_version() -> None:
    settings = cli._settings(parse(["lab", "up", "--asterisk", "16", "--free-ports"]))
    assert settings.asterisk == "16"
    assert cli._settings(parse(["lab", "up"])).asterisk == "22"
    with pytest.raises(SystemExit):
        parse(["lab", "up", "--asterisk", "18"])


def test_status_without_a_version_finds_the_running_16_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = LabSettings(cache_dir=tmp_path, asterisk="16", http_port=18088)
    saved.saved_path.parent.mkdir(parents=True)
    saved.saved_path.write_text(saved.to_json())
    # As if an Asterisk ran in the 16 chroot and none in the 22 one.
    monkeypatch.setattr(ChrootDaemon, "running_pid", _runs_in_the_16_chroot)
    monkeypatch.setattr(LabAsterisk, "_rx", lambda self, command, timeout: _uptime())
    assert cli.main(["lab", "status", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "asterisk: 16 (Debian bullseye)" in out
    assert "http://127.0.0.1:18088/ari" in out
    assert "RTP over UDP" in out


def test_status_of_a_stopped_lab_names_the_version_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["lab", "status", "--asterisk", "16", "--cache-dir", str(tmp_path)]) == 3
    out = capsys.readouterr().out
    assert "asterisk: 16 (Debian bullseye)" in out
    assert "running: False" in out


def _runs_in_the_16_chroot(daemon: ChrootDaemon) -> int | None:
    return 4242 if daemon._spec().root.name == BUILDS["16"].chroot_name else None


def _uptime() -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["asterisk"], 0, "System uptime: 1 second\n", "")
