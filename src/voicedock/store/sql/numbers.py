"""Trunks and phone numbers in SQL (both backends).

``reserve_phone_number`` takes the backend's lock on the organization's candidate numbers
(``Locks.lock_phone_numbers``: ``FOR UPDATE`` on PostgreSQL; SQLite's single writer serializes
anyway) before it counts their active calls, so two nodes never both put a number over its
concurrent-call limit.
"""

# Statements are assembled only from constant table/column names; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from voicedock.domain.number_health import NumberOutcomes
from voicedock.domain.records import PhoneNumber, Trunk
from voicedock.store.base import NumberChoice
from voicedock.store.sql.base import RowReads, StorePart, TransactionPart
from voicedock.store.sql.conn import SqlValue, marks
from voicedock.store.sql.rows import ACTIVE_IN, PHONE_NUMBERS, TERMINAL_IN, TRUNKS, integer

_OUTCOMES = (
    "SELECT count(*) AS calls, count(started_at) AS answered,"
    " coalesce(sum(CASE WHEN started_at IS NOT NULL AND duration_seconds < ? THEN 1 ELSE 0"
    " END), 0) AS short_calls,"
    " coalesce(sum(CASE WHEN end_reason = 'voicemail' THEN 1 ELSE 0 END), 0) AS voicemails"
    " FROM calls WHERE number_id = ? AND direction = 'outbound' AND test_run_id IS NULL"
    f" AND created_at >= ? AND status IN {TERMINAL_IN}"
)
# A flagged number after the healthy ones; a flag whose rest is over counts for none.
_HEALTHY_FIRST = "CASE WHEN p.flagged_at IS NULL OR p.resting_until IS NOT NULL THEN 0 ELSE 1 END"
_REST_COLUMNS = ("flagged_at", "resting_until", "health_since")
_ACTIVE_COUNT = (
    f"(SELECT count(*) FROM calls c WHERE c.number_id = p.id AND c.status IN {ACTIVE_IN})"
)


class SqlNumberLookups(RowReads):
    """An organization's phone numbers (``NumberLookups``), read by the store or in a
    transaction."""

    async def get_phone_number(
        self, organization_id: str | None, number_id: str
    ) -> PhoneNumber | None:
        return await self._by_id(PHONE_NUMBERS, organization_id, number_id)

    async def list_phone_numbers(self, organization_id: str) -> list[PhoneNumber]:
        return await self._of_organization(PHONE_NUMBERS, organization_id)


class SqlNumberWrites(SqlNumberLookups, TransactionPart):
    """Trunks and phone numbers inside an open transaction."""

    async def upsert_trunk(self, trunk: Trunk) -> None:
        await self._conn.execute(
            TRUNKS.insert_sql() + " ON CONFLICT (name) DO UPDATE SET "
            "pbx_endpoint = excluded.pbx_endpoint, codec = excluded.codec, "
            "description = excluded.description, pbx = excluded.pbx, "
            "max_cps = excluded.max_cps, max_channels = excluded.max_channels",
            *TRUNKS.encode(trunk, self._dialect, TRUNKS.insert_columns),
        )

    async def insert_phone_number(self, number: PhoneNumber) -> None:
        await self._insert(PHONE_NUMBERS, number)

    async def update_phone_number(self, number: PhoneNumber) -> None:
        """Write the fields the API edits; ``updated_at`` is set to now (also on ``number``)."""
        columns = (
            "number",
            "trunk",
            "max_concurrent_calls",
            "assistant_id",
            "label",
            "squad_id",
            "language",
            "traffic_split",
        )
        # last_used_at belongs to reserve_phone_number: a stale copy must not roll it back.
        await self._touched(PHONE_NUMBERS, number, columns, "phone number")

    async def delete_phone_number(self, organization_id: str, number_id: str) -> bool:
        return await self._delete(PHONE_NUMBERS, organization_id, number_id)

    async def reserve_phone_number(self, choice: NumberChoice, now: datetime) -> PhoneNumber | None:
        organization_id, number_id = choice.organization_id, choice.number_id
        among, trunks = choice.among, choice.trunks
        # The lock makes "count active calls, then use the number" atomic across nodes; the
        # count is a separate statement so it sees calls committed while we waited for it.
        await self._locks.lock_phone_numbers(self._conn, organization_id, number_id)
        sql = (
            "SELECT p.* FROM phone_numbers p WHERE p.organization_id = ?"
            f" AND {_ACTIVE_COUNT} < p.max_concurrent_calls"
        )
        args: list[SqlValue] = [organization_id]
        candidates = among if number_id is None else (number_id,)  # empty: any of them
        if candidates:
            sql += f" AND p.id IN ({marks(candidates)})"
            args.extend(candidates)
        if trunks is not None:
            if not trunks:
                return None
            sql += f" AND p.trunk IN ({marks(trunks)})"
            args.extend(sorted(trunks))
        order: list[str] = []
        if number_id is None:  # a resting number only when named
            sql += " AND (p.resting_until IS NULL OR p.resting_until <= ?)"
            args.append(self._dialect.dt(now))
            if choice.prefer_healthy:
                order.append(_HEALTHY_FIRST)
            if choice.local_prefix:
                order.append("CASE WHEN p.number LIKE ? THEN 0 ELSE 1 END")
                args.append(f"{choice.local_prefix}%")
        # Then the least recently used; never used numbers before all others.
        order += ["CASE WHEN p.last_used_at IS NULL THEN 0 ELSE 1 END", "p.last_used_at"]
        sql += f" ORDER BY {', '.join(order)}, p.created_at, p.id LIMIT 1"
        row = await self._conn.fetchrow(sql, *args)
        if row is None:
            return None
        number = PHONE_NUMBERS.decode(row, self._dialect)
        number.last_used_at = now
        await self._conn.execute(
            "UPDATE phone_numbers SET last_used_at = ? WHERE id = ?",
            self._dialect.dt(now),
            number.id,
        )
        return number

    async def number_outcomes(
        self, number_id: str, since: datetime, short_call_seconds: int, unanswered: Sequence[str]
    ) -> NumberOutcomes:
        sql = f"{_OUTCOMES} AND (started_at IS NOT NULL OR error IN ({marks(unanswered)}))"
        row = await self._conn.fetchrow(
            sql, short_call_seconds, number_id, self._dialect.dt(since), *unanswered
        )
        if row is None:
            return NumberOutcomes()
        return NumberOutcomes(
            calls=integer(row["calls"]),
            answered=integer(row["answered"]),
            short_calls=integer(row["short_calls"]),
            voicemails=integer(row["voicemails"]),
        )

    async def set_number_health(self, number: PhoneNumber) -> None:
        await self._update(PHONE_NUMBERS, number, ("health",), "phone number")

    async def set_number_rest(self, number: PhoneNumber) -> None:
        await self._update(PHONE_NUMBERS, number, _REST_COLUMNS, "phone number")

    async def change_number_flag(self, number: PhoneNumber, was: datetime | None) -> bool:
        assignments = ", ".join(f"{c} = ?" for c in _REST_COLUMNS)
        values = PHONE_NUMBERS.encode(number, self._dialect, _REST_COLUMNS)
        sql = f"UPDATE phone_numbers SET {assignments} WHERE id = ? AND organization_id = ?"
        args: list[SqlValue] = [*values, number.id, number.organization_id]
        if was is None:
            sql += " AND flagged_at IS NULL"
        else:
            sql += " AND flagged_at = ?"
            args.append(self._dialect.dt(was))
        return await self._conn.execute(sql, *args) == 1


class SqlNumberReads(SqlNumberLookups, StorePart):
    """Trunk and phone number lookups."""

    async def list_trunks(self) -> list[Trunk]:
        rows = await self._reader.fetch("SELECT * FROM trunks ORDER BY name")
        return [TRUNKS.decode(r, self._dialect) for r in rows]

    async def get_trunk(self, name: str) -> Trunk | None:
        return await self._by_key(TRUNKS, "name", name)

    async def find_phone_number_by_e164(self, number: str) -> PhoneNumber | None:
        return await self._by_key(PHONE_NUMBERS, "number", number)

    async def count_active_calls(self, number_id: str) -> int:
        row = await self._reader.fetchrow(
            f"SELECT count(*) AS n FROM calls WHERE number_id = ? AND status IN {ACTIVE_IN}",
            number_id,
        )
        return 0 if row is None else integer(row["n"])


__all__ = ["SqlNumberReads", "SqlNumberWrites"]
