"""Configured numbers mirrored at start-up: the operator moves one to another organization."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes.world import ACME, ACME_NUMBERS, GLOBEX, make_settings, org_id
from voicedock.calls.config_mirror import mirror_config
from voicedock.store import open_store

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
