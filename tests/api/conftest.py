"""API fixtures: the real app on 127.0.0.1 (port 0) over SQLite, and PostgreSQL when available,
with a FakePbx and two organizations that each hold an API key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from e2e.conftest import start_app
from fakes.pbx import FakePbx
from fakes.world import ACME, GLOBEX, make_settings
from pg_server import fresh_database
from voicedock.api.api_keys import issue_api_key
from voicedock.config import Settings
from voicedock.domain.records import utcnow
from voicedock.service import Service


@dataclass
class Api:
    client: TestClient[Any, Any]
    service: Service
    pbx: FakePbx
    acme_key: str
    globex_key: str

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.acme_key}"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return await fresh_database(request.getfixturevalue("postgres_server"), migrated=True)
    return f"sqlite:///{tmp_path / 'api.db'}"


async def start_api(database_url: str) -> tuple[TestClient[Any, Any], Service, FakePbx]:
    pbx = FakePbx()
    client, service = await start_app(make_settings(database_url), pbx)
    return client, service, pbx


@asynccontextmanager
async def serving(settings: Settings, clock: Callable[[], datetime] = utcnow) -> AsyncIterator[Api]:
    """The app with ``settings`` and a FakePbx, keys of both organizations; closed on exit.
    ``clock``: the engine's (tests shift it)."""
    pbx = FakePbx()
    client, service = await start_app(settings, pbx, clock=clock)
    try:
        acme_key, _ = await issue_api_key(service.store, ACME)
        globex_key, _ = await issue_api_key(service.store, GLOBEX)
        yield Api(client, service, pbx, acme_key, globex_key)
    finally:
        await client.close()


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    async with serving(make_settings(database_url)) as running:
        yield running
