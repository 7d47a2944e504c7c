"""Provisioning decisions that need no network: cache hits, half-built trees, mounts."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicedock_lab import provision
from voicedock_lab.settings import LabSettings

pytestmark = pytest.mark.unit


def test_marked_chroot_is_reused_without_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = LabSettings(cache_dir=tmp_path)
    settings.chroot_dir.mkdir()
    (settings.chroot_dir / provision.MARKER_NAME).write_text(provision.marker_text())
    monkeypatch.setattr(provision, "_build", lambda *a, **k: pytest.fail("rebuilt"))
    assert provision.provision(settings, log=False) < 1.0


@pytest.mark.parametrize("marker", [None, "format=0\npackages=asterisk\n"])
def test_unmarked_or_outdated_chroot_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, marker: str | None
) -> None:
    settings = LabSettings(cache_dir=tmp_path)
    settings.chroot_dir.mkdir()
    if marker is not None:
        (settings.chroot_dir / provision.MARKER_NAME).write_text(marker)
    builds: list[LabSettings] = []
    monkeypatch.setattr(provision, "_build", lambda s, log: builds.append(s))
    provision.provision(settings, log=False)
    assert builds == [settings]
    assert (tmp_path / ".provision.lock").exists()


def test_remove_tree_deletes_an_unmounted_tree(tmp_path: Path) -> None:
    tree = tmp_path / "root.partial"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/hostname").write_text("x")
    assert provision.mounts_under(tree) == []
    provision.remove_tree(tree)
    assert not tree.exists()


def test_mounts_under_finds_proc_only_below_root() -> None:
    assert Path("/proc") in provision.mounts_under(Path("/proc"))
    assert provision.mounts_under(Path("/proc/self/nonexistent-dir")) == []


def test_processes_rooted_in_finds_none_for_an_unused_dir(tmp_path: Path) -> None:
    assert provision.processes_rooted_in(tmp_path) == []
