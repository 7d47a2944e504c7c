"""The PostgreSQL node mailbox (``store/postgres/mailbox.py``): a command's row through its states,
the notifications on each node's channel, and rows left behind pruned; SQLite has none."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from pg_server import fresh_database
from voicedock.store import open_store
from voicedock.store.base import NodeReply

pytestmark = pytest.mark.unit


@pytest.mark.postgres
@pytest.mark.timeout(30)
async def test_a_command_row_goes_pending_taken_answered_and_each_side_is_notified(
    postgres_server: str,
) -> None:
    dsn = await fresh_database(postgres_server)
    store = await open_store(dsn)
    try:
        await store.migrate()
        mailbox = store.mailbox()
        assert mailbox is not None
        async with mailbox.listen("node-a") as to_a, mailbox.listen("node-b") as to_b:
            sent = await mailbox.send("node-b", "node-a", "x" * 20_000)
            async with asyncio.timeout(5):
                assert await anext(to_a) == f"q{sent}"
            assert await mailbox.pending("node-a") == [sent]
            assert await mailbox.reply(sent) == NodeReply("pending", None)
            assert await mailbox.take(sent, "node-b") is None  # not b's
            assert await mailbox.take(sent, "node-a") == "x" * 20_000
            assert await mailbox.take(sent, "node-a") is None  # taken once
            assert await mailbox.pending("node-a") == []
            await mailbox.answer(sent, '{"status": 200}')
            async with asyncio.timeout(5):
                assert await anext(to_b) == f"a{sent}"
            assert await mailbox.drop(sent) == NodeReply("answered", '{"status": 200}')
            assert await mailbox.reply(sent) is None
            assert await mailbox.drop(sent) is None
    finally:
        await store.aclose()


@pytest.mark.postgres
@pytest.mark.timeout(30)
async def test_commands_left_behind_long_ago_are_pruned(postgres_server: str) -> None:
    dsn = await fresh_database(postgres_server)
    store = await open_store(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        await store.migrate()
        mailbox = store.mailbox()
        assert mailbox is not None
        old = await mailbox.send("b", "a", "{}")
        recent = await mailbox.send("b", "a", "{}")
        await conn.execute(
            "UPDATE node_commands SET created_at = now() - interval '11 minutes' WHERE id = $1",
            old,
        )
        assert await mailbox.pending("a") == [recent]  # a (re)connecting node prunes
        assert await mailbox.reply(old) is None
        # So does every hundredth command sent.
        await conn.execute(
            "UPDATE node_commands SET created_at = now() - interval '11 minutes' WHERE id = $1",
            recent,
        )
        await conn.execute("SELECT setval('node_commands_id_seq', 99)")
        assert await mailbox.send("b", "a", "{}") == 100
        assert await mailbox.reply(recent) is None
    finally:
        await conn.close()
        await store.aclose()


async def test_sqlite_has_no_mailbox(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'one.db'}")
    try:
        assert store.mailbox() is None
    finally:
        await store.aclose()
