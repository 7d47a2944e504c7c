"""The SQL both backends share: reads (``SqlReads``) and writes (``SqlTransaction``).

Statements use ``?`` placeholders; the PostgreSQL connection adapter rewrites them to ``$n``.
Each backend supplies a ``Conn`` (driver errors already translated to ``StoreError``) and a
``Dialect``; the only behavioural hooks are row locks, which SQLite does not need because all
of its writes go through one connection in ``BEGIN IMMEDIATE`` transactions.
"""

# Statements are assembled only from constant table/column names; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Protocol

from voicedock.domain.records import (
    AnalysisTemplate,
    ApiKey,
    Assistant,
    Call,
    CallEvent,
    CallMessage,
    CallStatus,
    ConsoleSession,
    IdempotencyRecord,
    NodeLease,
    Organization,
    PhoneNumber,
    ProviderKey,
    ToolTemplate,
    Trunk,
    utcnow,
)
from voicedock.errors import StoreError
from voicedock.store.base import CallPage, CallQuery, ScheduledWaiting, StoreCounts
from voicedock.store.sql.campaigns import CampaignReads, CampaignStatements
from voicedock.store.sql.conn import Conn
from voicedock.store.sql.dials import DialStatements
from voicedock.store.sql.outbox import ClaimLock, EndpointReads, OutboxStatements
from voicedock.store.sql.rows import (
    ACTIVE_STATUSES,
    ANALYSIS_TEMPLATES,
    API_KEYS,
    ASSISTANTS,
    CALL_EVENTS,
    CALL_MESSAGES,
    CALL_MUTABLE_COLUMNS,
    CALLS,
    CONSOLE_SESSIONS,
    IDEMPOTENCY,
    NODES,
    ORGANIZATIONS,
    PHONE_NUMBERS,
    PROVIDER_KEYS,
    TERMINAL_STATUSES,
    TOOL_TEMPLATES,
    TRUNKS,
    Dialect,
)
from voicedock.store.sql.streams import (
    FORGET_STREAMS_OF_GONE_NODES,
    StreamLock,
    StreamStatements,
)
from voicedock.store.sql.usage import UsageReads

_ACTIVE_IN = "(" + ", ".join(f"'{s}'" for s in ACTIVE_STATUSES) + ")"
# Retention: calls that ended (or failed) before the bound cutoff; a live call never matches.
_TERMINAL_IN = "(" + ", ".join(f"'{s}'" for s in TERMINAL_STATUSES) + ")"
_ENDED_BEFORE = f"c.status IN {_TERMINAL_IN} AND COALESCE(c.ended_at, c.updated_at) < ?"
_ACTIVE_COUNT = (
    f"(SELECT count(*) FROM calls c WHERE c.number_id = p.id AND c.status IN {_ACTIVE_IN})"
)


class Locks(ClaimLock, StreamLock, Protocol):
    """Serialization a backend needs on top of its transactions (no-ops for SQLite)."""

    async def lock_phone_numbers(
        self, conn: Conn, organization_id: str, number_id: str | None
    ) -> None: ...
    async def lock_idempotency_key(self, conn: Conn, organization_id: str, key: str) -> None: ...
    async def lock_nodes(self, conn: Conn) -> None:
        """Until the transaction ends, no other node joins, leaves or claims calls."""
        ...


class NoLocks:
    """For a backend whose write transactions already exclude each other."""

    async def lock_phone_numbers(
        self, conn: Conn, organization_id: str, number_id: str | None
    ) -> None:
        return None

    async def lock_idempotency_key(self, conn: Conn, organization_id: str, key: str) -> None:
        return None

    async def lock_nodes(self, conn: Conn) -> None:
        return None

    async def lock_webhook_claims(self, conn: Conn) -> None:
        return None

    async def lock_event_streams(self, conn: Conn, organization_id: str) -> None:
        return None


class SqlReads(EndpointReads, CampaignReads, UsageReads):
    """The read half of ``Store``; ``_reader`` runs each statement outside any write."""

    _reader: Conn
    _dialect: Dialect

    async def get_organization(self, organization_id: str) -> Organization | None:
        row = await self._reader.fetchrow(
            "SELECT * FROM organizations WHERE id = ?", organization_id
        )
        return None if row is None else ORGANIZATIONS.decode(row, self._dialect)

    async def get_organization_by_name(self, name: str) -> Organization | None:
        row = await self._reader.fetchrow("SELECT * FROM organizations WHERE name = ?", name)
        return None if row is None else ORGANIZATIONS.decode(row, self._dialect)

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, revoked or not (the caller checks ``revoked_at``)."""
        row = await self._reader.fetchrow("SELECT * FROM api_keys WHERE key_hash = ?", key_hash)
        return None if row is None else API_KEYS.decode(row, self._dialect)

    async def get_api_key(self, organization_id: str | None, key_id: str) -> ApiKey | None:
        """The key with this id (revoked or not); ``organization_id`` None: any organization."""
        sql = "SELECT * FROM api_keys WHERE id = ?"
        args: list[Any] = [key_id]
        if organization_id is not None:
            sql += " AND organization_id = ?"
            args.append(organization_id)
        row = await self._reader.fetchrow(sql, *args)
        return None if row is None else API_KEYS.decode(row, self._dialect)

    async def list_api_keys(self, organization_id: str) -> list[ApiKey]:
        rows = await self._reader.fetch(
            "SELECT * FROM api_keys WHERE organization_id = ? ORDER BY created_at, id",
            organization_id,
        )
        return [API_KEYS.decode(r, self._dialect) for r in rows]

    async def metrics_counts(self) -> StoreCounts:
        calls = await self._reader.fetch(
            "SELECT direction, status, end_reason, count(*) AS n FROM calls"
            " GROUP BY direction, status, end_reason"
        )
        active = await self._reader.fetch(
            "SELECT p.trunk AS trunk, c.pbx AS pbx, c.owner_node AS node, count(*) AS n"
            " FROM calls c LEFT JOIN phone_numbers p ON p.id = c.number_id"
            f" WHERE c.status IN {_ACTIVE_IN} GROUP BY p.trunk, c.pbx, c.owner_node"
        )
        deliveries = await self._reader.fetch(
            "SELECT CASE WHEN delivered_at IS NOT NULL THEN 'delivered'"
            " WHEN gave_up_at IS NOT NULL THEN 'failed' ELSE 'pending' END AS state,"
            " count(*) AS n FROM webhook_outbox GROUP BY 1"
        )
        return StoreCounts(
            calls={
                (r["direction"], r["status"], r["end_reason"] or ""): int(r["n"]) for r in calls
            },
            active_calls={
                (r["trunk"] or "", r["pbx"] or "", r["node"] or ""): int(r["n"]) for r in active
            },
            webhook_deliveries={r["state"]: int(r["n"]) for r in deliveries},
        )

    async def find_console_session(self, token_hash: str) -> ConsoleSession | None:
        """The session with this hash, expired or not (the caller checks ``expires_at``)."""
        row = await self._reader.fetchrow(
            "SELECT * FROM console_sessions WHERE token_hash = ?", token_hash
        )
        return None if row is None else CONSOLE_SESSIONS.decode(row, self._dialect)

    async def list_trunks(self) -> list[Trunk]:
        rows = await self._reader.fetch("SELECT * FROM trunks ORDER BY name")
        return [TRUNKS.decode(r, self._dialect) for r in rows]

    async def get_trunk(self, name: str) -> Trunk | None:
        row = await self._reader.fetchrow("SELECT * FROM trunks WHERE name = ?", name)
        return None if row is None else TRUNKS.decode(row, self._dialect)

    async def get_phone_number(
        self, organization_id: str | None, number_id: str
    ) -> PhoneNumber | None:
        sql = "SELECT * FROM phone_numbers WHERE id = ?"
        args: list[Any] = [number_id]
        if organization_id is not None:
            sql += " AND organization_id = ?"
            args.append(organization_id)
        row = await self._reader.fetchrow(sql, *args)
        return None if row is None else PHONE_NUMBERS.decode(row, self._dialect)

    async def find_phone_number_by_e164(self, number: str) -> PhoneNumber | None:
        row = await self._reader.fetchrow("SELECT * FROM phone_numbers WHERE number = ?", number)
        return None if row is None else PHONE_NUMBERS.decode(row, self._dialect)

    async def list_phone_numbers(self, organization_id: str) -> list[PhoneNumber]:
        rows = await self._reader.fetch(
            "SELECT * FROM phone_numbers WHERE organization_id = ? ORDER BY created_at, id",
            organization_id,
        )
        return [PHONE_NUMBERS.decode(r, self._dialect) for r in rows]

    async def count_active_calls(self, number_id: str) -> int:
        row = await self._reader.fetchrow(
            f"SELECT count(*) AS n FROM calls WHERE number_id = ? AND status IN {_ACTIVE_IN}",
            number_id,
        )
        return 0 if row is None else int(row["n"])

    async def get_assistant(
        self, organization_id: str | None, assistant_id: str
    ) -> Assistant | None:
        sql = "SELECT * FROM assistants WHERE id = ?"
        args: list[Any] = [assistant_id]
        if organization_id is not None:
            sql += " AND organization_id = ?"
            args.append(organization_id)
        row = await self._reader.fetchrow(sql, *args)
        return None if row is None else ASSISTANTS.decode(row, self._dialect)

    async def list_assistants(self, organization_id: str) -> list[Assistant]:
        rows = await self._reader.fetch(
            "SELECT * FROM assistants WHERE organization_id = ? ORDER BY created_at, id",
            organization_id,
        )
        return [ASSISTANTS.decode(r, self._dialect) for r in rows]

    async def get_tool_template(
        self, organization_id: str, template_id: str
    ) -> ToolTemplate | None:
        row = await self._reader.fetchrow(
            "SELECT * FROM tool_templates WHERE id = ? AND organization_id = ?",
            template_id,
            organization_id,
        )
        return None if row is None else TOOL_TEMPLATES.decode(row, self._dialect)

    async def list_tool_templates(self, organization_id: str) -> list[ToolTemplate]:
        rows = await self._reader.fetch(
            "SELECT * FROM tool_templates WHERE organization_id = ? ORDER BY created_at, id",
            organization_id,
        )
        return [TOOL_TEMPLATES.decode(r, self._dialect) for r in rows]

    async def get_analysis_template(
        self, organization_id: str, template_id: str
    ) -> AnalysisTemplate | None:
        row = await self._reader.fetchrow(
            "SELECT * FROM analysis_templates WHERE id = ? AND organization_id = ?",
            template_id,
            organization_id,
        )
        return None if row is None else ANALYSIS_TEMPLATES.decode(row, self._dialect)

    async def list_analysis_templates(self, organization_id: str) -> list[AnalysisTemplate]:
        rows = await self._reader.fetch(
            "SELECT * FROM analysis_templates WHERE organization_id = ? ORDER BY created_at, id",
            organization_id,
        )
        return [ANALYSIS_TEMPLATES.decode(r, self._dialect) for r in rows]

    async def get_provider_key(
        self, organization_id: str, key_id: str | None = None, *, name: str | None = None
    ) -> ProviderKey | None:
        column, value = ("id", key_id) if name is None else ("name", name)
        row = await self._reader.fetchrow(
            f"SELECT * FROM provider_keys WHERE {column} = ? AND organization_id = ?",
            value,
            organization_id,
        )
        return None if row is None else PROVIDER_KEYS.decode(row, self._dialect)

    async def list_provider_keys(self, organization_id: str) -> list[ProviderKey]:
        rows = await self._reader.fetch(
            "SELECT * FROM provider_keys WHERE organization_id = ? ORDER BY created_at, id",
            organization_id,
        )
        return [PROVIDER_KEYS.decode(r, self._dialect) for r in rows]

    async def get_call(self, organization_id: str | None, call_id: str) -> Call | None:
        sql = "SELECT * FROM calls WHERE id = ?"
        args: list[Any] = [call_id]
        if organization_id is not None:
            sql += " AND organization_id = ?"
            args.append(organization_id)
        row = await self._reader.fetchrow(sql, *args)
        return None if row is None else CALLS.decode(row, self._dialect)

    async def list_calls(self, query: CallQuery) -> CallPage:
        where = ["organization_id = ?"]
        args: list[Any] = [query.organization_id]
        if query.status is not None:
            where.append("status = ?")
            args.append(str(query.status))
        if query.start_date is not None:
            where.append("created_at >= ?")
            args.append(self._dialect.dt(query.start_date))
        if query.end_date is not None:
            where.append("created_at <= ?")
            args.append(self._dialect.dt(query.end_date))
        if query.campaign_id is not None:
            where.append("campaign_id = ?")
            args.append(query.campaign_id)
        filtered = " AND ".join(where)
        total_row = await self._reader.fetchrow(
            f"SELECT count(*) AS n FROM calls WHERE {filtered}", *args
        )
        if query.after is not None:  # keyset on the list's order: no duplicate, no gap
            filtered += " AND (created_at < ? OR (created_at = ? AND seq < ?))"
            after = self._dialect.dt(query.after.created_at)
            args += [after, after, query.after.seq]
        rows = await self._reader.fetch(
            f"SELECT * FROM calls WHERE {filtered} "
            "ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?",
            *args,
            max(query.limit, 0),
            max(query.offset, 0),
        )
        total = 0 if total_row is None else int(total_row["n"])
        return CallPage(calls=[CALLS.decode(r, self._dialect) for r in rows], total=total)

    async def list_active_calls(self, owner_node: str | None = None) -> list[Call]:
        sql = f"SELECT * FROM calls WHERE status IN {_ACTIVE_IN}"
        args: list[Any] = []
        if owner_node is not None:
            sql += " AND owner_node = ?"
            args.append(owner_node)
        rows = await self._reader.fetch(sql + " ORDER BY seq", *args)
        return [CALLS.decode(r, self._dialect) for r in rows]

    async def scheduled_due_organizations(self, now: datetime) -> list[str]:
        rows = await self._reader.fetch(
            "SELECT organization_id, min(scheduled_at) AS first_due FROM calls"
            " WHERE status = ? AND scheduled_at <= ?"
            " GROUP BY organization_id ORDER BY first_due, organization_id",
            str(CallStatus.SCHEDULED),
            self._dialect.dt(now),
        )
        return [str(r["organization_id"]) for r in rows]

    async def list_nodes(self) -> list[NodeLease]:
        rows = await self._reader.fetch("SELECT * FROM nodes ORDER BY id")
        return [NODES.decode(r, self._dialect) for r in rows]

    async def list_messages(self, call_id: str) -> list[CallMessage]:
        rows = await self._reader.fetch(
            "SELECT * FROM call_messages WHERE call_id = ? ORDER BY seq", call_id
        )
        return [CALL_MESSAGES.decode(r, self._dialect) for r in rows]

    async def list_events(self, call_id: str, after_seq: int = 0) -> list[CallEvent]:
        rows = await self._reader.fetch(
            "SELECT * FROM call_events WHERE call_id = ? AND seq > ? ORDER BY seq",
            call_id,
            after_seq,
        )
        return [CALL_EVENTS.decode(r, self._dialect) for r in rows]


class SqlTransaction(OutboxStatements, CampaignStatements, DialStatements, StreamStatements):
    """``Transaction`` over one connection that is inside an open database transaction."""

    _locks: Locks

    def __init__(self, conn: Conn, dialect: Dialect, locks: Locks) -> None:
        self._conn = conn
        self._dialect = dialect
        self._locks = locks

    async def _insert(self, table: Any, record: Any) -> None:
        await self._conn.execute(
            table.insert_sql(), *table.encode(record, self._dialect, table.insert_columns)
        )

    async def _update(self, table: Any, record: Any, columns: tuple[str, ...], what: str) -> None:
        assignments = ", ".join(f"{c} = ?" for c in columns)
        changed = await self._conn.execute(
            f"UPDATE {table.name} SET {assignments} WHERE id = ? AND organization_id = ?",
            *table.encode(record, self._dialect, columns),
            record.id,
            record.organization_id,
        )
        if changed != 1:
            raise StoreError(f"{what} to update does not exist")

    # organizations and keys
    async def insert_organization(self, org: Organization) -> None:
        await self._insert(ORGANIZATIONS, org)

    async def update_organization(self, org: Organization) -> None:
        """Write what changes after creation: the display name, the assistant defaults and
        the operator's limits."""
        columns = (
            "display_name",
            "assistant_defaults",
            "max_concurrent_calls",
            "max_scheduled_calls",
        )
        changed = await self._conn.execute(
            f"UPDATE organizations SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
            *ORGANIZATIONS.encode(org, self._dialect, columns),
            org.id,
        )
        if changed != 1:
            raise StoreError("organization to update does not exist")

    async def insert_api_key(self, key: ApiKey) -> None:
        await self._insert(API_KEYS, key)

    async def update_api_key(self, key: ApiKey) -> None:
        """Write the fields that change after issue: the name, the revocation time and the
        listen grant."""
        await self._update(API_KEYS, key, ("name", "revoked_at", "listen"), "API key")

    async def insert_console_session(self, session: ConsoleSession) -> None:
        await self._insert(CONSOLE_SESSIONS, session)

    async def delete_console_session(self, token_hash: str) -> None:
        await self._conn.execute("DELETE FROM console_sessions WHERE token_hash = ?", token_hash)

    async def purge_console_sessions(self, now: datetime) -> None:
        """Forget sessions that expired before ``now``."""
        await self._conn.execute(
            "DELETE FROM console_sessions WHERE expires_at < ?", self._dialect.dt(now)
        )

    async def upsert_trunk(self, trunk: Trunk) -> None:
        await self._conn.execute(
            TRUNKS.insert_sql() + " ON CONFLICT (name) DO UPDATE SET "
            "pbx_endpoint = excluded.pbx_endpoint, codec = excluded.codec, "
            "description = excluded.description, pbx = excluded.pbx, "
            "max_cps = excluded.max_cps, max_channels = excluded.max_channels",
            *TRUNKS.encode(trunk, self._dialect, TRUNKS.insert_columns),
        )

    # phone numbers
    async def insert_phone_number(self, number: PhoneNumber) -> None:
        await self._insert(PHONE_NUMBERS, number)

    async def update_phone_number(self, number: PhoneNumber) -> None:
        """Write the fields the API edits; ``updated_at`` is set to now (also on ``number``)."""
        number.updated_at = utcnow()
        columns = ("number", "trunk", "max_concurrent_calls", "assistant_id", "label")
        # last_used_at belongs to reserve_phone_number: a stale copy must not roll it back.
        await self._update(PHONE_NUMBERS, number, (*columns, "updated_at"), "phone number")

    async def delete_phone_number(self, organization_id: str, number_id: str) -> bool:
        changed = await self._conn.execute(
            "DELETE FROM phone_numbers WHERE id = ? AND organization_id = ?",
            number_id,
            organization_id,
        )
        return changed > 0

    async def reserve_phone_number(
        self,
        organization_id: str,
        number_id: str | None,
        now: datetime,
        among: Sequence[str] = (),
        trunks: Collection[str] | None = None,
    ) -> PhoneNumber | None:
        # The lock makes "count active calls, then use the number" atomic across nodes; the
        # count is a separate statement so it sees calls committed while we waited for it.
        await self._locks.lock_phone_numbers(self._conn, organization_id, number_id)
        sql = (
            "SELECT p.* FROM phone_numbers p WHERE p.organization_id = ?"
            f" AND {_ACTIVE_COUNT} < p.max_concurrent_calls"
        )
        args: list[Any] = [organization_id]
        if number_id is not None:
            sql += " AND p.id = ?"
            args.append(number_id)
        elif among:
            sql += f" AND p.id IN ({', '.join('?' * len(among))})"
            args.extend(among)
        if trunks is not None:
            if not trunks:
                return None
            sql += f" AND p.trunk IN ({', '.join('?' * len(trunks))})"
            args.extend(sorted(trunks))
        # Least recently used first; never used numbers before all others.
        sql += (
            " ORDER BY CASE WHEN p.last_used_at IS NULL THEN 0 ELSE 1 END, p.last_used_at,"
            " p.created_at, p.id LIMIT 1"
        )
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

    # assistants
    async def insert_assistant(self, assistant: Assistant) -> None:
        await self._insert(ASSISTANTS, assistant)

    async def update_assistant(self, assistant: Assistant) -> None:
        """Write every mutable field; ``updated_at`` is set to now (also on ``assistant``)."""
        assistant.updated_at = utcnow()
        columns = ("name", "config", "business_name", "active", "updated_at")
        await self._update(ASSISTANTS, assistant, columns, "assistant")

    async def delete_assistant(self, organization_id: str, assistant_id: str) -> bool:
        changed = await self._conn.execute(
            "DELETE FROM assistants WHERE id = ? AND organization_id = ?",
            assistant_id,
            organization_id,
        )
        return changed > 0

    # tool templates
    async def insert_tool_template(self, template: ToolTemplate) -> None:
        await self._insert(TOOL_TEMPLATES, template)

    async def update_tool_template(self, template: ToolTemplate) -> None:
        template.updated_at = utcnow()
        await self._update(TOOL_TEMPLATES, template, ("tool", "updated_at"), "tool template")

    async def delete_tool_template(self, organization_id: str, template_id: str) -> bool:
        changed = await self._conn.execute(
            "DELETE FROM tool_templates WHERE id = ? AND organization_id = ?",
            template_id,
            organization_id,
        )
        return changed > 0

    # analysis templates
    async def insert_analysis_template(self, template: AnalysisTemplate) -> None:
        await self._insert(ANALYSIS_TEMPLATES, template)

    async def update_analysis_template(self, template: AnalysisTemplate) -> None:
        template.updated_at = utcnow()
        columns = ("name", "plan", "updated_at")
        await self._update(ANALYSIS_TEMPLATES, template, columns, "analysis template")

    async def delete_analysis_template(self, organization_id: str, template_id: str) -> bool:
        changed = await self._conn.execute(
            "DELETE FROM analysis_templates WHERE id = ? AND organization_id = ?",
            template_id,
            organization_id,
        )
        return changed > 0

    # provider keys
    async def insert_provider_key(self, key: ProviderKey) -> None:
        await self._insert(PROVIDER_KEYS, key)

    async def update_provider_key(self, key: ProviderKey) -> None:
        key.updated_at = utcnow()
        columns = ("sealed", "last4", "updated_at")
        await self._update(PROVIDER_KEYS, key, columns, "provider key")

    async def delete_provider_key(self, organization_id: str, key_id: str) -> bool:
        changed = await self._conn.execute(
            "DELETE FROM provider_keys WHERE id = ? AND organization_id = ?",
            key_id,
            organization_id,
        )
        return changed > 0

    # calls
    async def insert_call(self, call: Call) -> Call:
        row = await self._conn.fetchrow(
            CALLS.insert_sql(returning="seq"),
            *CALLS.encode(call, self._dialect, CALLS.insert_columns),
        )
        assert row is not None  # RETURNING always yields the inserted row
        return dataclasses.replace(call, seq=int(row["seq"]))

    async def get_call_for_update(self, call_id: str) -> Call | None:
        row = await self._conn.fetchrow(
            "SELECT * FROM calls WHERE id = ?" + self._dialect.lock_suffix, call_id
        )
        return None if row is None else CALLS.decode(row, self._dialect)

    async def claim_scheduled_call(
        self,
        node_id: str,
        now: datetime,
        skip: Collection[str] = (),
        *,
        organization_id: str | None = None,
    ) -> Call | None:
        """The scheduled call due first at ``now`` (but those in ``skip``; of
        ``organization_id`` when given), locked until the transaction ends and owned by
        ``node_id`` (on PostgreSQL, a call another node holds is skipped, not waited for: each
        is claimed by one node, once its status moves on)."""
        locked = self._dialect.lock_suffix + (" SKIP LOCKED" if self._dialect.lock_suffix else "")
        sql = "SELECT * FROM calls WHERE status = ? AND scheduled_at <= ?"
        args: list[Any] = [str(CallStatus.SCHEDULED), self._dialect.dt(now)]
        if organization_id is not None:
            sql += " AND organization_id = ?"
            args.append(organization_id)
        if skip:
            sql += f" AND id NOT IN ({', '.join('?' for _ in skip)})"
            args.extend(skip)
        row = await self._conn.fetchrow(sql + " ORDER BY scheduled_at, seq LIMIT 1" + locked, *args)
        if row is None:
            return None
        call = CALLS.decode(row, self._dialect)
        await self._conn.execute("UPDATE calls SET owner_node = ? WHERE id = ?", node_id, call.id)
        return dataclasses.replace(call, owner_node=node_id)

    async def scheduled_waiting(self, organization_id: str) -> ScheduledWaiting:
        row = await self._conn.fetchrow(
            "SELECT count(*) AS n, min(scheduled_at) AS first_due FROM calls"
            " WHERE organization_id = ? AND status = ?",
            organization_id,
            str(CallStatus.SCHEDULED),
        )
        if row is None:
            return ScheduledWaiting(0, None)
        return ScheduledWaiting(int(row["n"]), self._dialect.from_dt(row["first_due"]))

    async def update_call(self, call: Call) -> None:
        """Write every mutable field; ``updated_at`` is set to now (also on ``call``)."""
        call.updated_at = utcnow()
        await self._update(CALLS, call, CALL_MUTABLE_COLUMNS, "call")

    async def add_message(self, message: CallMessage) -> CallMessage:
        row = await self._conn.fetchrow(
            CALL_MESSAGES.insert_sql(returning="seq"),
            *CALL_MESSAGES.encode(message, self._dialect, CALL_MESSAGES.insert_columns),
        )
        assert row is not None
        return dataclasses.replace(message, seq=int(row["seq"]))

    async def add_event(self, event: CallEvent) -> CallEvent:
        row = await self._conn.fetchrow(
            CALL_EVENTS.insert_sql(returning="seq"),
            *CALL_EVENTS.encode(event, self._dialect, CALL_EVENTS.insert_columns),
        )
        assert row is not None
        return dataclasses.replace(event, seq=int(row["seq"]))

    # nodes
    async def clock(self) -> datetime:
        if self._dialect.clock_sql is None:
            return utcnow()
        row = await self._conn.fetchrow(self._dialect.clock_sql)
        assert row is not None
        return self._dialect.decode_datetime(row["now"])

    async def nodes_for_update(self) -> list[NodeLease]:
        await self._locks.lock_nodes(self._conn)
        rows = await self._conn.fetch("SELECT * FROM nodes ORDER BY id")
        return [NODES.decode(r, self._dialect) for r in rows]

    async def put_node(self, lease: NodeLease) -> None:
        await self._locks.lock_nodes(self._conn)
        await self._conn.execute("DELETE FROM nodes WHERE id = ?", lease.id)
        await self._insert(NODES, lease)
        await self._conn.execute(FORGET_STREAMS_OF_GONE_NODES)  # a previous run's

    async def renew_node(self, node_id: str, run: str, until: datetime) -> bool:
        changed = await self._conn.execute(
            "UPDATE nodes SET lease_until = ? WHERE id = ? AND run = ?",
            self._dialect.dt(until),
            node_id,
            run,
        )
        return changed == 1

    async def delete_node(self, node_id: str, run: str | None = None) -> bool:
        await self._locks.lock_nodes(self._conn)
        sql, args = "DELETE FROM nodes WHERE id = ?", [node_id]
        if run is not None:
            sql += " AND run = ?"
            args.append(run)
        deleted = await self._conn.execute(sql, *args) > 0
        await self._conn.execute(FORGET_STREAMS_OF_GONE_NODES)
        return deleted

    async def take_unowned_calls(self, node_id: str) -> list[Call]:
        rows = await self._conn.fetch(
            "UPDATE calls SET owner_node = ?"
            f" WHERE owner_node IS NULL AND status IN {_ACTIVE_IN} RETURNING *",
            node_id,
        )
        return sorted((CALLS.decode(r, self._dialect) for r in rows), key=lambda c: c.seq)

    async def claim_lost_calls(self, node_id: str, now: datetime) -> list[Call]:
        await self._locks.lock_nodes(self._conn)
        await self._conn.execute(
            "DELETE FROM nodes WHERE lease_until <= ? AND id <> ?", self._dialect.dt(now), node_id
        )
        await self._conn.execute(FORGET_STREAMS_OF_GONE_NODES)  # the dead nodes' streams
        rows = await self._conn.fetch(
            "UPDATE calls SET owner_node = ?"
            f" WHERE status IN {_ACTIVE_IN} AND owner_node IS NOT NULL"
            " AND owner_node NOT IN (SELECT id FROM nodes) RETURNING *",
            node_id,
        )
        return sorted((CALLS.decode(r, self._dialect) for r in rows), key=lambda c: c.seq)

    # idempotency
    async def get_idempotency(self, organization_id: str, key: str) -> IdempotencyRecord | None:
        """Also serializes concurrent transactions on the same key until they commit, so
        get-then-put is atomic: the second request with a key sees the first one's record."""
        await self._locks.lock_idempotency_key(self._conn, organization_id, key)
        row = await self._conn.fetchrow(
            "SELECT * FROM idempotency WHERE organization_id = ? AND key = ?",
            organization_id,
            key,
        )
        return None if row is None else IDEMPOTENCY.decode(row, self._dialect)

    async def put_idempotency(self, record: IdempotencyRecord) -> None:
        """Insert; a record already stored under the key raises ``DuplicateKeyError``."""
        await self._insert(IDEMPOTENCY, record)

    # Retention (calls/retention.py): each is one statement over at most ``limit`` rows, so
    # several nodes may run it at once; run again until it returns less than ``limit``.

    async def delete_calls_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Delete calls that ended before ``cutoff`` (their messages and events go with them)."""
        return await self._conn.execute(
            "DELETE FROM calls WHERE id IN "
            f"(SELECT c.id FROM calls c WHERE {_ENDED_BEFORE} ORDER BY c.seq LIMIT ?)",
            self._dialect.dt(cutoff),
            limit,
        )

    async def delete_transcripts_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Delete the transcript (messages and transcript events) of calls that ended before
        ``cutoff``; how many rows went."""
        messages = await self._conn.execute(
            "DELETE FROM call_messages WHERE seq IN (SELECT m.seq FROM call_messages m "
            f"JOIN calls c ON c.id = m.call_id WHERE {_ENDED_BEFORE} LIMIT ?)",
            self._dialect.dt(cutoff),
            limit,
        )
        if messages:
            return messages
        return await self._conn.execute(
            "DELETE FROM call_events WHERE seq IN (SELECT e.seq FROM call_events e "
            f"JOIN calls c ON c.id = e.call_id WHERE e.type = 'transcript' AND {_ENDED_BEFORE} "
            "LIMIT ?)",
            self._dialect.dt(cutoff),
            limit,
        )

    async def clear_analysis_ended_before(self, cutoff: datetime, limit: int) -> int:
        """Blank the summary and analysis of calls that ended before ``cutoff``."""
        return await self._conn.execute(
            "UPDATE calls SET summary = NULL, analysis_result = NULL WHERE id IN "
            f"(SELECT c.id FROM calls c WHERE {_ENDED_BEFORE} "
            "AND (c.summary IS NOT NULL OR c.analysis_result IS NOT NULL) LIMIT ?)",
            self._dialect.dt(cutoff),
            limit,
        )

    async def delete_idempotency_before(self, cutoff: datetime) -> int:
        return await self._conn.execute(
            "DELETE FROM idempotency WHERE created_at <= ?", self._dialect.dt(cutoff)
        )


__all__ = ["Conn", "Locks", "NoLocks", "SqlReads", "SqlTransaction"]
