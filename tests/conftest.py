"""Fixtures every test directory shares: the session's lab Asterisk (see lab_session.py) and
one PostgreSQL server for the session (each test that needs one makes its own database)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from lab_session import lab, pytest_collection_finish
from pg_server import PostgresUnavailable, start_postgres

__all__ = ["lab", "postgres_server", "pytest_collection_finish"]


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
