"""Configured numbers mirrored at start-up: the operator moves one to another organization."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from fakes.world import ACME, ACME_NUMBERS, GLOBEX, make_settings, org_id
from pg_server import fresh_database
from voicedock.config import Settings
from voicedock.organizations import config_mirror
from voicedock.organizations.config_mirror import mirror_config
from voicedock.store import Store, TransactionConflict, open_store
from voicedock.store.postgres.asyncpg_errors import translate

pytestmark = pytest.mark.unit


async def test_a_configured_number_given_to_another_organization_moves_there(
    tmp_path: Path,
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'mirror.db'}")
    store = await open_store(settings.database.url)
    try:
        await store.migrate()
        await mirror_config(store, settings)
        before = await store.find_phone_number_by_e164(ACME_NUMBERS[0])
        assert before is not None
        assert before.organization_id == org_id(ACME)
        assert before.assistant_id is not None

        settings.numbers[0].organization = GLOBEX  # the operator edits the file, restarts
        settings.numbers[0].assistant = ""
        await mirror_config(store, settings)
        after = await store.find_phone_number_by_e164(ACME_NUMBERS[0])
        assert after is not None
        assert after.organization_id == org_id(GLOBEX)
        assert after.assistant_id is None
        assert await store.get_phone_number(org_id(ACME), before.id) is None
        assert ACME_NUMBERS[0] not in {
            n.number for n in await store.list_phone_numbers(org_id(ACME))
        }
    finally:
        await store.aclose()


async def test_a_mirror_the_database_rolled_back_to_break_a_deadlock_is_mirrored_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nodes starting together on PostgreSQL may write the same rows in one transaction each
    while another node dials; the server breaks such a lock cycle by rolling one back."""
    settings = make_settings(f"sqlite:///{tmp_path / 'mirror.db'}")
    store = await open_store(settings.database.url)
    real = config_mirror._mirror_once
    attempts = 0

    async def rolled_back_once(store: Store, settings: Settings) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise TransactionConflict("postgres: DeadlockDetectedError: deadlock detected")
        await real(store, settings)

    monkeypatch.setattr(config_mirror, "_mirror_once", rolled_back_once)
    try:
        await store.migrate()
        await mirror_config(store, settings)
        assert attempts == 2
        assert await store.find_phone_number_by_e164(ACME_NUMBERS[0]) is not None
    finally:
        await store.aclose()


def test_a_deadlock_or_serialization_failure_is_a_conflict_to_retry() -> None:
    for exc in (
        asyncpg.DeadlockDetectedError("deadlock detected"),
        asyncpg.SerializationError("could not serialize access"),
    ):
        assert isinstance(translate(exc), TransactionConflict)
    assert not isinstance(translate(asyncpg.PostgresError("other")), TransactionConflict)


@pytest.mark.postgres
async def test_a_restart_with_the_same_configuration_waits_for_no_placement(
    postgres_server: str,
) -> None:
    """A node starting again (a rolling upgrade) while another node places a call: the
    placement holds its number's row, then its trunk's; the mirror leaves rows the file did not
    change alone, so it neither waits for those locks nor takes them in the other order (a
    deadlock the database would break by failing the placement)."""
    settings = make_settings(await fresh_database(postgres_server))
    store = await open_store(settings.database.url)
    try:
        await store.migrate()
        await mirror_config(store, settings)
        before = await store.find_phone_number_by_e164(ACME_NUMBERS[0])
        assert before is not None
        placing = await asyncpg.connect(settings.database.url)
        try:
            async with placing.transaction():
                await placing.execute("SELECT id FROM phone_numbers FOR UPDATE")
                await placing.execute("SELECT name FROM trunks FOR UPDATE")
                async with asyncio.timeout(5):
                    await mirror_config(store, settings)
        finally:
            await placing.close()
        assert await store.find_phone_number_by_e164(ACME_NUMBERS[0]) == before  # not written
        settings.numbers[0].label = "front desk"  # a change is written
        await mirror_config(store, settings)
        after = await store.find_phone_number_by_e164(ACME_NUMBERS[0])
        assert after is not None
        assert (after.label, after.created_at) == ("front desk", before.created_at)
        assert after.updated_at > before.updated_at
    finally:
        await store.aclose()
