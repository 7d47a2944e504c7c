"""docs/architecture.md names the modules where things live: every path it names exists, and
every package of the service (a folder with ``__init__.py``) and every top-level module is
named in it (what is there when the test runs: a package moved or added is named where it is).

A path in backticks (``calls/engine.py``, ``pbx/asterisk/media/``, ``store/migrations/``) is
read under the service's package (``src/voicedock/``), the lab's (``lab/src/voicedock_lab/``)
or the repository (``lab/``, ``dialplan/lab/``); a bare module name beside its package
(``originate.py``, ``ari/``) must be a module or package somewhere under them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
BASES = (ROOT / "src" / "voicedock", ROOT / "lab" / "src" / "voicedock_lab", ROOT)
_CODE = re.compile(r"`([^`\s]+)`")
_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)*/?")
_FILE = (".py", ".md", ".toml", ".sql", ".sh", ".conf")


def named_paths(text: str) -> list[str]:
    """The module and file paths ``text`` names in backticks (not routes, not commands)."""
    names = (m.group(1) for m in _CODE.finditer(text))
    return [
        name
        for name in names
        if _PATH.fullmatch(name) and (name.endswith("/") or name.endswith(_FILE))
    ]


def exists(name: str) -> bool:
    path = name.rstrip("/")
    wanted_dir = name.endswith("/")
    if "/" in path:
        return any(
            (base / path).is_dir() if wanted_dir else (base / path).is_file() for base in BASES
        )
    packages = (ROOT / "src" / "voicedock", ROOT / "lab" / "src" / "voicedock_lab")
    if wanted_dir:
        found = (p.is_dir() for base in packages for p in base.rglob(path))
        return (ROOT / path).is_dir() or any(found)
    found = (p.is_file() for base in packages for p in base.rglob(path))
    return (ROOT / path).is_file() or any(found)


def test_the_paths_are_read_as_paths() -> None:
    text = "`calls/policy.py` `pbx/` `POST /calls/outbound` `voicedock serve/migrate` `Pbx`"
    assert named_paths(text) == ["calls/policy.py", "pbx/"]
    for name in ("calls/policy.py", "pbx/asterisk/ari/", "originate.py", "lab/pyproject.toml"):
        assert exists(name), name
    for name in ("calls/nowhere.py", "webhooks/guard.py", "nowhere/"):
        assert not exists(name), name


def test_every_module_path_the_architecture_names_exists() -> None:
    missing = sorted({name for name in named_paths(DOC.read_text()) if not exists(name)})
    assert missing == []


def floors_table(text: str) -> str:
    """The rows of the floors table (under "## The floors")."""
    section = text.split("## The floors", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("| "))


def test_every_top_level_module_has_its_floor() -> None:
    package = ROOT / "src" / "voicedock"
    tops = {
        f"{p.name}/" if p.is_dir() else p.name
        for p in package.iterdir()
        if (p.is_dir() and (p / "__init__.py").is_file())
        or (p.suffix == ".py" and p.name != "__init__.py")
    }
    named = set(named_paths(floors_table(DOC.read_text())))
    assert sorted(tops - named) == []


def test_the_domain_floor_names_every_domain_module() -> None:
    modules = {
        f"domain/{p.name}"
        for p in (ROOT / "src" / "voicedock" / "domain").glob("*.py")
        if p.name != "__init__.py"
    }
    named = set(named_paths(floors_table(DOC.read_text())))
    assert sorted(modules - named) == []


def packages() -> list[str]:
    """Every package under the service's, by its path (``calls/engine``)."""
    package = ROOT / "src" / "voicedock"
    return sorted(
        str(init.parent.relative_to(package))
        for init in package.rglob("__init__.py")
        if init.parent != package
    )


def names_package(named: set[str], package: str) -> bool:
    """``named`` names ``package``: its path (``calls/engine/``), or a module right in it by
    its full path (``calls/engine/inbound.py``), which leads a reader to the folder."""
    inside = f"{package}/"
    return any(
        name == inside or (name.startswith(inside) and "/" not in name[len(inside) :])
        for name in named
    )


def test_names_package_reads_full_paths() -> None:
    named = {"calls/engine/", "pbx/asterisk/transfers/warm.py", "inbound.py"}
    assert names_package(named, "calls/engine")
    assert names_package(named, "pbx/asterisk/transfers")
    assert not names_package(named, "pbx/asterisk")  # a module of a sub-package names that one
    assert not names_package(named, "calls")
    assert not names_package({"calls/engine_parts.py"}, "calls/engine")


def test_every_package_is_named() -> None:
    found = packages()
    assert {"organizations", "calls/engine"} <= set(found)  # the walk found packages
    named = set(named_paths(DOC.read_text()))
    assert [p for p in found if not names_package(named, p)] == []
