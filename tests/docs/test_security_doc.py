"""docs/security.md names, for each threat, the test that proves what stops it: every test it
names exists (a renamed or deleted test cannot leave a threat unproved in silence)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "security.md"
# `tests/x/test_y.py`, `tests/x/test_y.py::name` or `::name` (a test of the last file named),
# a parametrized case (`name[id]`) by its function.
_NAMED = re.compile(r"`(tests/[\w/]+\.py)?(?:::(\w+)(?:\[[^\]`]*\])?)?`")


def _tests_named() -> list[tuple[str, str | None]]:
    named: list[tuple[str, str | None]] = []
    for line in DOC.read_text().splitlines():
        current: str | None = None  # each table row names its files afresh
        for path, name in _NAMED.findall(line):
            if path:
                current = path
            if current is None:
                continue
            named.append((current, name or None))
    return named


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def test_every_threat_row_names_a_test() -> None:
    rows = [
        line
        for line in DOC.read_text().splitlines()
        if line.startswith("| ") and not line.startswith(("| attack", "| who", "| **"))
    ]
    assert rows, "no threat table in docs/security.md"
    for row in rows:
        assert "`tests/" in row, f"a threat without its test: {row[:100]}"


def test_every_test_the_threats_name_exists() -> None:
    named = _tests_named()
    assert len(named) > 20
    for path, name in named:
        file = REPO / path
        assert file.is_file(), f"docs/security.md names {path}, which does not exist"
        if name is not None:
            assert name in _functions(file), f"docs/security.md names {path}::{name}: not there"
