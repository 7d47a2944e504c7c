from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fakes.calls import calls_of
from fakes.memory_store import MemoryStore
from fakes.pbx import FakePbx
from fakes.world import make_settings
from voicedock.calls.engine import CallEngine
from voicedock.config import Settings
from voicedock.organizations.config_mirror import mirror_config


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[MemoryStore]:
    store = MemoryStore()
    await mirror_config(store, settings)
    yield store
    await store.aclose()


@pytest.fixture
def pbx() -> FakePbx:
    return FakePbx()


@pytest.fixture
async def engine(store: MemoryStore, pbx: FakePbx, settings: Settings) -> AsyncIterator[CallEngine]:
    """The engine, the PBX's events reaching it as in the service: through the runner (this
    PBX carries no media, so no conversation starts)."""
    engine, runner = calls_of(store, pbx, settings)
    async with runner:
        await pbx.start(runner.events.handle_pbx_event)
        yield engine
