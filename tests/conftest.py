"""Fixtures every test directory shares: the session's lab Asterisk (see lab_session.py) and
one PostgreSQL server for the session (each test that needs one makes its own database).

``scripts/test.sh`` runs the suite on several pytest-xdist workers (``--dist loadscope``: a
module stays on one worker). Each worker is its own session: its own lab Asterisk, lab
FreeSWITCH and PostgreSQL server, on ports chosen at run time, so workers never share a call,
a port or a database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import freeswitch_lab_session
import lab_session
from freeswitch_lab_session import freeswitch_lab
from lab_session import lab
from pg_server import PostgresUnavailable, start_postgres

__all__ = [
    "freeswitch_lab",
    "lab",
    "postgres_server",
    "pytest_collection_finish",
    "pytest_collection_modifyitems",
]

# A module with a test of these places real calls: it mostly waits on audio in real time.
LAB_MARKERS = ("asterisk", "freeswitch_lab", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker: the modules that place real calls first, each module's tests in their
    order. Every worker sorts the same way (xdist requires one collection), the long lab modules
    start at once and the quick unit modules fill in around them instead of trailing behind."""
    del config
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    first: dict[str, int] = {}
    lab_modules: set[str] = set()
    for index, item in enumerate(items):
        module = item.nodeid.split("::", 1)[0]
        first.setdefault(module, index)
        if any(item.get_closest_marker(name) for name in LAB_MARKERS):
            lab_modules.add(module)

    def order(item: pytest.Item) -> tuple[bool, int]:
        module = item.nodeid.split("::", 1)[0]
        return module not in lab_modules, first[module]

    items.sort(key=order)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Provision the lab PBXs the selected tests need, before any test's timeout runs."""
    lab_session.pytest_collection_finish(session)
    freeswitch_lab_session.build_after_collection(session)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """DSN of a PostgreSQL server started for this test session (skip/fail if impossible)."""
    try:
        dsn, stop = start_postgres()
    except PostgresUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL unavailable: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield dsn
    finally:
        stop()
