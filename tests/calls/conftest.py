from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fakes.memory_store import MemoryStore
from fakes.pbx import FakePbx
from fakes.world import make_settings
from voicedock.calls.config_mirror import mirror_config
from voicedock.calls.engine import CallEngine
from voicedock.config import Settings


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
async def engine(store: MemoryStore, pbx: FakePbx, settings: Settings) -> CallEngine:
    engine = CallEngine(store, pbx, settings)
    await pbx.start(engine.handle_pbx_event)
    return engine
