"""``NodeMailbox`` on PostgreSQL: the ``node_commands`` table and LISTEN/NOTIFY.

A command is a row (a notification carries only its id: NOTIFY payloads are limited to 8000
bytes); each node listens on a channel of its own, named from a digest of its id (a channel
name has at most 63 bytes, a node id up to 64 characters). ``pg_notify`` runs in the statement
that writes the row, so the notification is sent exactly when the row is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg

from voicedock.store.base import NodeReply
from voicedock.store.postgres.asyncpg_errors import guarded, translate

# Commands older than this are gone however they stand: their sender has long given up.
_FORGOTTEN_AFTER = timedelta(minutes=10)
_PRUNE_EVERY = 100  # every hundredth command sent, and each (re)connection, prunes them
_CONNECT_TIMEOUT = 10.0
_IDLE_CHECK = 30.0  # seconds without a notification before the connection is checked


def node_channel(node_id: str) -> str:
    """The LISTEN channel of the node ``node_id`` (the same digest as ``md5`` in SQL)."""
    return "voicedock_node_" + hashlib.md5(node_id.encode(), usedforsecurity=False).hexdigest()


class PostgresMailbox:
    def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
        self._pool = pool
        self._dsn = dsn

    async def send(self, sender: str, recipient: str, request: str) -> int:
        row = await guarded(
            self._pool.fetchrow(
                "WITH sent AS (INSERT INTO node_commands (sender, recipient, request)"
                " VALUES ($1, $2, $3) RETURNING id)"
                " SELECT id, pg_notify('voicedock_node_' || md5($2), 'q' || id) FROM sent",
                sender,
                recipient,
                request,
            )
        )
        assert row is not None
        command_id = int(row["id"])
        if command_id % _PRUNE_EVERY == 0:
            await self._prune()
        return command_id

    async def _prune(self) -> None:
        """Delete the commands left behind long ago (a sender that stopped waiting)."""
        await guarded(
            self._pool.execute(
                "DELETE FROM node_commands WHERE created_at < now() - $1::interval",
                _FORGOTTEN_AFTER,
            )
        )

    async def take(self, command_id: int, recipient: str) -> str | None:
        request: object = await guarded(
            self._pool.fetchval(
                "UPDATE node_commands SET state = 'taken'"
                " WHERE id = $1 AND recipient = $2 AND state = 'pending' RETURNING request",
                command_id,
                recipient,
            )
        )
        return None if request is None else str(request)

    async def answer(self, command_id: int, reply: str) -> None:
        await guarded(
            self._pool.execute(
                "WITH answered AS (UPDATE node_commands SET state = 'answered', reply = $2"
                " WHERE id = $1 RETURNING id, sender)"
                " SELECT pg_notify('voicedock_node_' || md5(sender), 'a' || id) FROM answered",
                command_id,
                reply,
            )
        )

    async def reply(self, command_id: int) -> NodeReply | None:
        row = await guarded(
            self._pool.fetchrow("SELECT state, reply FROM node_commands WHERE id = $1", command_id)
        )
        return None if row is None else NodeReply(row["state"], row["reply"])

    async def drop(self, command_id: int) -> NodeReply | None:
        row = await guarded(
            self._pool.fetchrow(
                "DELETE FROM node_commands WHERE id = $1 RETURNING state, reply", command_id
            )
        )
        return None if row is None else NodeReply(row["state"], row["reply"])

    async def pending(self, recipient: str) -> list[int]:
        await self._prune()
        rows = await guarded(
            self._pool.fetch(
                "SELECT id FROM node_commands WHERE recipient = $1 AND state = 'pending'"
                " ORDER BY id",
                recipient,
            )
        )
        return [int(r["id"]) for r in rows]

    @contextlib.asynccontextmanager
    async def listen(self, node_id: str) -> AsyncIterator[AsyncIterator[str]]:
        try:
            conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(
                self._dsn, timeout=_CONNECT_TIMEOUT
            )
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise translate(exc) from exc
        notices: asyncio.Queue[str | None] = asyncio.Queue()

        def heard(_c: object, _pid: int, _channel: str, payload: object) -> None:
            notices.put_nowait(str(payload))

        def lost(_c: object) -> None:
            notices.put_nowait(None)

        async def received() -> AsyncIterator[str]:
            while True:
                try:
                    async with asyncio.timeout(_IDLE_CHECK):
                        notice = await notices.get()
                except TimeoutError:  # quiet for long: is the connection still there?
                    try:
                        await conn.execute("SELECT 1", timeout=_CONNECT_TIMEOUT)
                    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
                        return
                    continue
                if notice is None:
                    return
                yield notice

        try:
            conn.add_termination_listener(lost)
            await guarded(conn.add_listener(node_channel(node_id), heard))
            yield received()
        finally:
            conn.terminate()  # no goodbye over a connection that may be broken


__all__ = ["PostgresMailbox", "node_channel"]
