"""Store fixtures: ``store`` runs each test on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pg_server import fresh_database, truncate_all_tables
from voicedock.store import Store, open_store


@pytest.fixture
async def postgres_dsn(postgres_server: str) -> str:
    """An empty, unmigrated database of its own for one test."""
    return await fresh_database(postgres_server)


@pytest.fixture(scope="session")
def shared_postgres(postgres_server: str) -> dict[str, str]:
    """Holds the one migrated database the suite shares (created by the first test)."""
    return {"server": postgres_server}


async def migrated_database(shared: dict[str, str]) -> str:
    if "database" not in shared:
        dsn = await fresh_database(shared["server"], for_the_session=True)
        opened = await open_store(dsn)
        try:
            await opened.migrate()
        finally:
            await opened.aclose()
        shared["database"] = dsn
    return shared["database"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of the parametrized backend."""
    if backend == "postgres":
        # A fresh database per test costs ~0.5 s; emptying a shared one costs milliseconds.
        dsn = await migrated_database(request.getfixturevalue("shared_postgres"))
        await truncate_all_tables(dsn)
        return dsn
    return f"sqlite:///{tmp_path / 'voicedock.db'}"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = await open_store(store_url)
    try:
        await opened.migrate()
        yield opened
    finally:
        await opened.aclose()
