"""Fixtures every test directory shares: the session's lab Asterisk (see lab_session.py) and
one PostgreSQL server for the session (each test that needs one makes its own database)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import freeswitch_lab_session
import lab_session
from freeswitch_lab_session import freeswitch_lab
from lab_session import lab
from pg_server import PostgresUnavailable, start_postgres

__all__ = ["freeswitch_lab", "lab", "postgres_server", "pytest_collection_finish"]


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
