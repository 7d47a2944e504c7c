"""What each worker's session teardown spent its time on, in the run's summary.

The last test a worker runs carries the teardown of the worker's whole session: its lab
Asterisks and lab FreeSWITCH stopped and their directories deleted, its PostgreSQL server
stopped and its data deleted. Each of these parts is timed (``timed``) and sent with that
test's teardown report (``attach``); a teardown of ``SHOWN_FROM_S`` or more is listed after the
slowest modules with its parts and the time none of them accounts for (``summary``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

SHOWN_FROM_S = 5.0
PART = "session teardown part"

# The parts timed since the last teardown report: (what, seconds).
_parts: list[tuple[str, float]] = []


@contextlib.contextmanager
def timed(what: str) -> Iterator[None]:
    """Time one part of a session fixture's teardown, however it ends."""
    start = time.monotonic()
    try:
        yield
    finally:
        _parts.append((what, time.monotonic() - start))


def attach(report: pytest.TestReport) -> None:
    """The parts timed during this teardown, on its report (xdist sends them to the
    controller with it)."""
    if report.when == "teardown" and _parts:
        report.user_properties.extend((PART, part) for part in _parts)
        _parts.clear()


def summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Each teardown of ``SHOWN_FROM_S`` or more that carried session parts (every worker's)."""
    slow = [
        (report, [value for key, value in report.user_properties if key == PART])
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "teardown"
        and report.duration >= SHOWN_FROM_S
        and any(key == PART for key, _ in getattr(report, "user_properties", ()))
    ]
    if not slow:
        return
    terminalreporter.write_sep("=", "slow session teardowns")
    for report, parts in slow:
        terminalreporter.write_line(f"{report.duration:7.2f}s {report.nodeid}")
        for what, seconds in parts:
            terminalreporter.write_line(f"{seconds:9.2f}s {what}")
        rest = report.duration - sum(seconds for _, seconds in parts)
        terminalreporter.write_line(f"{rest:9.2f}s (none of these)")
