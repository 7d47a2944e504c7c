"""The slowest test modules, printed after pytest's slowest tests (``--durations``).

A module is what a pytest-xdist worker runs whole (``--dist loadscope``), so its time, setup and
teardown included, is what decides how long a run of several workers takes: the list to read
before splitting or trimming anything. The times add up every phase of every test of the
module as each worker reported it; on several workers their sum is the work, not the wall time.
"""

from __future__ import annotations

from collections import Counter

import pytest

SHOWN = 15

_seconds: Counter[str] = Counter()
_tests: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    module = report.nodeid.split("::", 1)[0]
    _seconds[module] += report.duration
    if report.when == "call":
        _tests[module] += 1


def summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The slowest modules, with ``--durations`` (``conftest.pytest_terminal_summary``)."""
    if not terminalreporter.config.option.durations or not _seconds:
        return
    terminalreporter.write_sep("=", f"slowest {SHOWN} modules")
    for module, seconds in _seconds.most_common(SHOWN):
        terminalreporter.write_line(f"{seconds:7.1f}s {_tests[module]:5d} tests  {module}")
    terminalreporter.write_line(f"{sum(_seconds.values()):7.1f}s in all (every worker's time)")
