"""What a lab PBX printed while a test that failed was running, added to that test's report.

A lab Asterisk or FreeSWITCH serves a whole worker's session, and its instance directory is
removed at the end: without this, a CI failure on a lab says what the test saw but not what the
PBX did. The lines the PBX printed during the failing test (its last ``SHOWN``) appear in the
failure's output as a section of its own.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

SHOWN = 60

# Where each lab's log was when a test's setup ended, by test id and log path.
_offsets: dict[tuple[str, Path], int] = {}


def _logs(item: pytest.Item) -> list[tuple[str, Path]]:
    """The log of each lab PBX the test uses (``lab``, ``second_lab``, ``freeswitch_lab`` …)."""
    values: dict[str, object] = getattr(item, "funcargs", {})
    found: list[tuple[str, Path]] = []
    for name, value in values.items():
        path = getattr(value, "log_path", None)
        if type(value).__name__.startswith("Lab") and isinstance(path, Path):
            found.append((name, path))
    return found


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _printed_since(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-SHOWN:]) or "(nothing)"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    logs = _logs(item)
    if report.when == "setup":
        for _, path in logs:
            _offsets[item.nodeid, path] = _size(path)
    elif report.when == "call":
        for name, path in logs:
            offset = _offsets.pop((item.nodeid, path), 0)
            if report.failed:
                section = (f"{name} log during the test", _printed_since(path, offset))
                report.sections.append(section)
    return report
