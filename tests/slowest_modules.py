"""The slowest test modules, printed after pytest's slowest tests (``--durations``).

A module is what a pytest-xdist worker runs whole (``--dist loadscope``), so its time, setup and
teardown included, is what decides how long a run of several workers takes: the list to read
before splitting or trimming anything. The times add up every phase of every test of the
module as each worker reported it; on several workers their sum is the work, not the wall time.
The same work is then told by what the tests need (a lab PBX, PostgreSQL, nothing but the
code), the first of ``NEEDS`` a test is marked with: where the suite's time goes. A test's
markers are told to the run by its worker (``mark_need``: a report's keywords also hold the
names of its folders and its parameters' ids, so ``tests/asterisk/``'s unit tests and every
``[asterisk-…]`` case would count as the lab Asterisk's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable

import pytest

SHOWN = 15
# What a test needs, by its marker, the most particular first; a test marked with none of them
# needs the code alone (``unit``).
NEEDS = (
    ("asterisk16", "the lab Asterisk 16"),
    ("asterisk", "the lab Asterisk 22"),
    ("freeswitch_lab", "the lab FreeSWITCH"),
    ("postgres", "PostgreSQL"),
)
CODE_ALONE = "the code alone"

_seconds: Counter[str] = Counter()
_tests: Counter[str] = Counter()
_need_seconds: Counter[str] = Counter()
_need_tests: Counter[str] = Counter()


NEED = "need"  # the user property a test's reports carry (``mark_need``)


def need_of(markers: Collection[str]) -> str:
    """What a test with these markers needs, as ``NEEDS`` says."""
    return next((what for marker, what in NEEDS if marker in markers), CODE_ALONE)


def mark_need(items: Iterable[pytest.Item]) -> None:
    """Give each test's reports what it needs (``pytest_collection_modifyitems``): user
    properties travel with the report from an xdist worker to the run."""
    for item in items:
        item.user_properties.append((NEED, need_of({m.name for m in item.iter_markers()})))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    module = report.nodeid.split("::", 1)[0]
    need = str(dict(report.user_properties).get(NEED, CODE_ALONE))
    _seconds[module] += report.duration
    _need_seconds[need] += report.duration
    if report.when == "call":
        _tests[module] += 1
        _need_tests[need] += 1


def summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The slowest modules, with ``--durations`` (``conftest.pytest_terminal_summary``)."""
    if not terminalreporter.config.option.durations or not _seconds:
        return
    terminalreporter.write_sep("=", f"slowest {SHOWN} modules")
    for module, seconds in _seconds.most_common(SHOWN):
        terminalreporter.write_line(f"{seconds:7.1f}s {_tests[module]:5d} tests  {module}")
    terminalreporter.write_line(f"{sum(_seconds.values()):7.1f}s in all (every worker's time)")
    terminalreporter.write_sep("=", "the same work by what the tests need")
    for need, seconds in _need_seconds.most_common():
        terminalreporter.write_line(f"{seconds:7.1f}s {_need_tests[need]:5d} tests  {need}")
