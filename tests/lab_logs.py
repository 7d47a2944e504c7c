"""What a lab PBX printed while a test that failed was running, added to that test's report.

A lab Asterisk or FreeSWITCH serves a whole worker's session, and its instance directory is
removed at the end: without this, a CI failure on a lab says what the test saw but not what the
PBX did. The lines the PBX printed during the failing test (its last ``SHOWN``) appear in the
failure's output as a section of its own, and a lab Asterisk's channels and bridges at the
failure in another (what is still up from earlier tests on the worker's lab).
"""

from __future__ import annotations

import subprocess
from collections.abc import Generator
from pathlib import Path

import pytest

import teardown_parts

SHOWN = 60
# What a lab Asterisk is asked at a failure (its CLI: ``LabAsterisk.cli``).
STATE_COMMANDS = ("core show channels concise", "bridge show all")

# Where each lab's log was when a test's setup ended, by test id and log path.
_offsets: dict[tuple[str, Path], int] = {}


def _labs(item: pytest.Item) -> list[tuple[str, Path, object]]:
    """Each lab PBX the test uses (``lab``, ``second_lab``, ``freeswitch_lab`` …): its name,
    its log, itself."""
    values: dict[str, object] = getattr(item, "funcargs", {})
    found: list[tuple[str, Path, object]] = []
    for name, value in values.items():
        path = getattr(value, "log_path", None)
        if type(value).__name__.startswith("Lab") and isinstance(path, Path):
            found.append((name, path, value))
    return found


def state_of(lab: object) -> str | None:
    """A lab Asterisk's channels and bridges now, each command's answer within 5 s (a PBX that
    does not answer says so, and is not asked the next command: it would be waited on again);
    None for a lab without a CLI."""
    cli = getattr(lab, "cli", None)
    if not callable(cli) or type(lab).__name__ != "LabAsterisk":
        return None
    answers = []
    for index, command in enumerate(STATE_COMMANDS):
        try:
            answers.append(f"> {command}\n{cli(command, timeout=5.0)}")
        except Exception as exc:  # a report, never the test's outcome
            answers.append(f"> {command}\n({type(exc).__name__}: {exc})")
            if isinstance(exc.__cause__, subprocess.TimeoutExpired):
                answers += [f"> {left}\n(not asked)" for left in STATE_COMMANDS[index + 1 :]]
                break
    return "\n".join(answers)


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
    labs = _labs(item)
    if report.when == "setup":
        for _, path, _lab in labs:
            _offsets[item.nodeid, path] = _size(path)
    elif report.when == "call":
        for name, path, lab in labs:
            offset = _offsets.pop((item.nodeid, path), 0)
            if report.failed:
                section = (f"{name} log during the test", _printed_since(path, offset))
                report.sections.append(section)
                if (state := state_of(lab)) is not None:
                    report.sections.append((f"{name} at the failure", state))
    else:  # the last test of a worker: what its session's teardown spent (teardown_parts)
        teardown_parts.attach(report)
    return report
