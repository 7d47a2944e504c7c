"""No class in ``src/`` grows past what a reader holds at once: 400 lines or 25 methods (every
``def`` in its body, dunders and properties included). A class that needs more has a part
with its own state and job to hand to a collaborator (as ``pbx/freeswitch/media/playout_files.py``
is to the call media, ``pipeline/dialogue/realtime/`` to the speech-to-speech dialogue)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SOURCE = Path(__file__).resolve().parents[1] / "src" / "voicedock"
MAX_LINES = 400
MAX_METHODS = 25


def class_sizes() -> list[tuple[str, int, int]]:
    """Each class of the package: ``module:Class``, its lines, its methods."""
    sizes = []
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno is not None
                methods = sum(
                    isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) for item in node.body
                )
                name = f"{path.relative_to(SOURCE)}:{node.name}"
                sizes.append((name, node.end_lineno - node.lineno + 1, methods))
    return sizes


def test_no_class_is_over_400_lines_or_25_methods() -> None:
    sizes = class_sizes()
    assert len(sizes) > 300  # the walk found the package's classes
    over = [s for s in sizes if s[1] > MAX_LINES or s[2] > MAX_METHODS]
    assert over == [], over


MAX_CONSTRUCTOR_LINES = 40


def test_no_constructor_is_over_40_lines() -> None:
    """An object is built from typed options and parts: what takes longer to wire belongs in
    a named builder (as ``Service.open``'s, ``CallEngine``'s or ``LiveConversation``'s)."""
    constructors = []
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef) and node.name == "__init__":
                assert node.end_lineno is not None
                lines = node.end_lineno - node.lineno + 1
                constructors.append((f"{path.relative_to(SOURCE)}:{node.lineno}", lines))
    assert len(constructors) > 250  # the walk found the package's constructors
    over = [c for c in constructors if c[1] > MAX_CONSTRUCTOR_LINES]
    assert over == [], over
