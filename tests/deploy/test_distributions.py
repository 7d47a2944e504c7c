"""The repository's two distributions as built and installed: the service's wheel holds the
service alone (no lab module), the lab's wheel holds the lab and adds the ``lab`` command to
``voicedock``, and the ``voicedock`` that scripts/bootstrap.sh installs runs ``voicedock lab``.

Each wheel is built for real (``pip wheel``, the build backend of its pyproject.toml) from a
copy of the checkout's sources (its top-level files, src/ and lab/), so that no build/ or
*.egg-info lands in the tree; about 2 s each."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from voicedock.cli import COMMANDS_GROUP

pytestmark = pytest.mark.unit

PROJECT = Path(__file__).resolve().parents[2]
# Where the two distributions' sources live; what installs and builds leave beside them.
SOURCES = ("src", "lab")
NOT_SOURCES = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist")


def built_wheel(distribution: str, tmp_path: Path) -> zipfile.ZipFile:
    """The wheel of the distribution whose pyproject.toml is in ``distribution`` (relative to
    the repository root), built from a copy of the checkout's sources."""
    tree = tmp_path / "checkout"
    tree.mkdir()
    for path in PROJECT.iterdir():
        if path.is_file():
            shutil.copy2(path, tree / path.name)
    for name in SOURCES:
        shutil.copytree(PROJECT / name, tree / name, ignore=NOT_SOURCES)
    wheels = tmp_path / "wheels"
    build = ["wheel", "--no-deps", "--wheel-dir", str(wheels), str(tree / distribution)]
    done = subprocess.run(
        [sys.executable, "-m", "pip", *build],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = wheels.glob("*.whl")
    return zipfile.ZipFile(wheel)


def top_level(wheel: zipfile.ZipFile) -> set[str]:
    return {name.split("/", 1)[0] for name in wheel.namelist()}


def entry_points(wheel: zipfile.ZipFile) -> configparser.ConfigParser:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    parsed = configparser.ConfigParser()
    parsed.read_string(wheel.read(name).decode())
    return parsed


def test_the_service_wheel_holds_the_service_and_no_lab(tmp_path: Path) -> None:
    with built_wheel(".", tmp_path) as wheel:
        names = wheel.namelist()
        assert top_level(wheel) == {"voicedock", "voicedock-0.1.0.dist-info"}
        assert [n for n in names if n.startswith("voicedock/lab/")] == []
        # The service itself is there: the CLI, the service, a PBX adapter, a migration.
        for module in ("cli.py", "service.py", "pbx/asterisk/pbx.py", "pbx/freeswitch/pbx.py"):
            assert f"voicedock/{module}" in names, module
        assert any(n.startswith("voicedock/store/migrations/") for n in names)
        points = entry_points(wheel)
        assert dict(points["console_scripts"]) == {"voicedock": "voicedock.cli:main"}
        assert not points.has_section(COMMANDS_GROUP)  # it adds no command to itself


def test_the_lab_wheel_holds_the_lab_and_adds_its_command(tmp_path: Path) -> None:
    with built_wheel("lab", tmp_path) as wheel:
        names = wheel.namelist()
        assert top_level(wheel) == {"voicedock_lab", "voicedock_lab-0.1.0.dist-info"}
        for module in ("cli.py", "server.py", "freeswitch.py", "provision.py", "py.typed"):
            assert f"voicedock_lab/{module}" in names, module
        assert dict(entry_points(wheel)[COMMANDS_GROUP]) == {"lab": "voicedock_lab.cli:register"}
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        assert "Requires-Dist: voicedock\n" in wheel.read(metadata).decode()


def test_the_installed_voicedock_runs_the_lab_command() -> None:
    """scripts/bootstrap.sh installs both distributions into the one virtualenv: its
    ``voicedock`` finds the lab's command (as scripts/run.sh and the README use it)."""
    voicedock = Path(sys.executable).with_name("voicedock")
    listed = subprocess.run(
        [str(voicedock), "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    commands = re.search(r"\{([a-z,]+)\}", listed.stdout)
    assert commands is not None, listed.stdout
    assert {"serve", "doctor", "lab"} <= set(commands.group(1).split(","))
    done = subprocess.run(
        [str(voicedock), "lab", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    for command in ("up", "down", "status", "cli"):
        assert command in done.stdout
