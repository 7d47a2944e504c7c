"""LabAsterisk.configure() on a fake chroot: file modes, ownership, instance layout."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from voicedock_lab import server
from voicedock_lab.config import REQUIRED_MODULES, find_project_root
from voicedock_lab.errors import LabError
from voicedock_lab.server import LabAsterisk
from voicedock_lab.settings import LabSettings

pytestmark = pytest.mark.unit

MODDIR = "usr/lib/x86_64-linux-gnu/asterisk/modules"


def fake_chroot(cache: Path, modules: tuple[str, ...] = REQUIRED_MODULES) -> LabSettings:
    settings = LabSettings(cache_dir=cache, instance="unit")
    root = settings.chroot_dir
    (root / "etc/asterisk").mkdir(parents=True)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\nasterisk:x:101:102:Asterisk:/var/lib/asterisk:/x\n"
    )
    # Debian ships indications.conf 0640 root: the lab copy must be readable by asterisk.
    dist = root / "etc/asterisk/indications.conf"
    dist.write_text("[general]\ncountry=us\n")
    dist.chmod(0o640)
    (root / MODDIR).mkdir(parents=True)
    for name in modules:
        (root / MODDIR / f"{name}.so").write_bytes(b"")
    return settings


@pytest.fixture
def chowns(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    calls: list[tuple[str, int, int]] = []
    monkeypatch.setattr(server.os, "chown", lambda p, u, g: calls.append((str(p), u, g)))
    return calls


def test_configure_writes_world_readable_configs_and_asterisk_owned_dirs(
    tmp_path: Path, chowns: list[tuple[str, int, int]]
) -> None:
    settings = fake_chroot(tmp_path)
    LabAsterisk(settings, project_root=find_project_root(Path(__file__))).configure()
    etc = settings.instance_dir / "etc"
    names = {p.name for p in etc.iterdir()}
    assert {"asterisk.conf", "modules.conf", "pjsip.conf", "extensions.conf"} <= names
    assert "indications.conf" in names
    for path in etc.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name
    owned = {Path(p).relative_to(settings.instance_dir).as_posix() for p, _, _ in chowns}
    assert {"run", "spool", "spool/monitor", "lib", "log", "recordings"} <= owned
    assert {(u, g) for _, u, g in chowns} == {(101, 102)}
    assert f"astmoddir => /{MODDIR}" in (etc / "asterisk.conf").read_text()


def test_configure_refuses_an_asterisk_without_chan_websocket(
    tmp_path: Path, chowns: list[tuple[str, int, int]]
) -> None:
    modules = tuple(m for m in REQUIRED_MODULES if m != "chan_websocket")
    settings = fake_chroot(tmp_path, modules)
    lab = LabAsterisk(settings, project_root=find_project_root(Path(__file__)))
    with pytest.raises(LabError, match="chan_websocket"):
        lab.configure()


def test_stopped_lab_status_and_idempotent_down(tmp_path: Path) -> None:
    lab = LabAsterisk(LabSettings(cache_dir=tmp_path, instance="unit"), verbose=False)
    assert not lab.status().running
    lab.down()
    lab.down()
    with pytest.raises(LabError, match="not running"):
        lab.cli("core show uptime")
