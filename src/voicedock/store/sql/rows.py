"""Mapping between the domain records and table rows, shared by both backends.

Each ``Table`` lists its columns in insert order and which of them need converting: datetimes
(dialect-specific), JSON documents (serialized text in both dialects: SQLite TEXT, and
asyncpg takes ``str`` for JSONB), booleans and enums. Rows arrive as plain dicts.
"""

# Statements are assembled only from constant table/column names; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from voicedock.domain.records import (
    AnalysisTemplate,
    ApiKey,
    Assistant,
    Call,
    CallEvent,
    CallMessage,
    CallStatus,
    ConsoleSession,
    Direction,
    EventStream,
    IdempotencyRecord,
    KeyScope,
    NodeLease,
    Organization,
    PhoneNumber,
    ProviderKey,
    ToolTemplate,
    Trunk,
)
from voicedock.store.base import json_default

Row = Mapping[str, Any]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the SQL backends at the value and statement level."""

    name: str
    encode_datetime: Callable[[datetime], Any]
    decode_datetime: Callable[[Any], datetime]
    lock_suffix: str  # appended to SELECTs that must lock their rows ("" where writes serialize)
    # The database's clock, for leases several hosts must agree on (None: this host's clock).
    clock_sql: str | None = None

    def dt(self, value: datetime | None) -> Any:
        return None if value is None else self.encode_datetime(value)

    def from_dt(self, value: Any) -> datetime | None:
        return None if value is None else self.decode_datetime(value)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to it."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _sqlite_encode_datetime(value: datetime) -> str:
    # Fixed width (always microseconds, always +00:00) so text order equals time order.
    return as_utc(value).isoformat(timespec="microseconds")


def _sqlite_decode_datetime(value: Any) -> datetime:
    return as_utc(datetime.fromisoformat(str(value)))


def _pg_decode_datetime(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a timestamptz, got {type(value).__name__}")
    return as_utc(value)


SQLITE = Dialect("sqlite", _sqlite_encode_datetime, _sqlite_decode_datetime, "")
POSTGRES = Dialect(
    "postgres", as_utc, _pg_decode_datetime, " FOR UPDATE", "SELECT clock_timestamp() AS now"
)


def dump_json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, default=json_default, separators=(",", ":"))


def load_json(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(value)


@dataclass(frozen=True, slots=True)
class Table(Generic[T]):
    name: str
    model: Callable[..., T]
    columns: tuple[str, ...]
    datetimes: frozenset[str] = frozenset()
    documents: frozenset[str] = frozenset()  # JSON
    booleans: frozenset[str] = frozenset()
    enums: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)
    generated: frozenset[str] = frozenset()  # assigned by the database, never inserted

    @property
    def insert_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.generated)

    def insert_sql(self, returning: str | None = None) -> str:
        cols = self.insert_columns
        sql = f"INSERT INTO {self.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        return f"{sql} RETURNING {returning}" if returning else sql

    def encode_value(self, column: str, value: Any, dialect: Dialect) -> Any:
        if column in self.datetimes:
            return dialect.dt(value)
        if column in self.documents:
            return dump_json(value)
        if column in self.booleans:
            return bool(value)
        if column in self.enums:
            return str(value)
        return value

    def encode(self, record: T, dialect: Dialect, columns: tuple[str, ...]) -> list[Any]:
        return [self.encode_value(c, getattr(record, c), dialect) for c in columns]

    def decode(self, row: Row, dialect: Dialect) -> T:
        values: dict[str, Any] = {}
        for column in self.columns:
            value = row[column]
            if column in self.datetimes:
                value = dialect.from_dt(value)
            elif column in self.documents:
                value = load_json(value)
            elif column in self.booleans:
                value = bool(value)
            elif column in self.enums:
                value = self.enums[column](value)
            values[column] = value
        return self.model(**values)


ORGANIZATIONS = Table(
    "organizations",
    Organization,
    (
        "id",
        "name",
        "created_at",
        "display_name",
        "assistant_defaults",
        "max_concurrent_calls",
        "max_scheduled_calls",
    ),
    datetimes=frozenset({"created_at"}),
    documents=frozenset({"assistant_defaults"}),
)

API_KEYS = Table(
    "api_keys",
    ApiKey,
    ("id", "organization_id", "key_hash", "name", "created_at", "revoked_at", "scope", "listen"),
    datetimes=frozenset({"created_at", "revoked_at"}),
    booleans=frozenset({"listen"}),
    enums={"scope": KeyScope},
)

CONSOLE_SESSIONS = Table(
    "console_sessions",
    ConsoleSession,
    ("token_hash", "api_key_id", "organization_id", "csrf_token", "expires_at", "created_at"),
    datetimes=frozenset({"expires_at", "created_at"}),
)

TRUNKS = Table(
    "trunks",
    Trunk,
    ("name", "pbx_endpoint", "codec", "description", "pbx", "max_cps", "max_channels"),
)

PHONE_NUMBERS = Table(
    "phone_numbers",
    PhoneNumber,
    (
        "id",
        "organization_id",
        "number",
        "trunk",
        "max_concurrent_calls",
        "assistant_id",
        "label",
        "last_used_at",
        "created_at",
        "updated_at",
    ),
    datetimes=frozenset({"last_used_at", "created_at", "updated_at"}),
)

ASSISTANTS = Table(
    "assistants",
    Assistant,
    (
        "id",
        "organization_id",
        "name",
        "config",
        "business_name",
        "active",
        "created_at",
        "updated_at",
    ),
    datetimes=frozenset({"created_at", "updated_at"}),
    documents=frozenset({"config"}),
    booleans=frozenset({"active"}),
)

TOOL_TEMPLATES = Table(
    "tool_templates",
    ToolTemplate,
    ("id", "organization_id", "tool", "created_at", "updated_at"),
    datetimes=frozenset({"created_at", "updated_at"}),
    documents=frozenset({"tool"}),
)

ANALYSIS_TEMPLATES = Table(
    "analysis_templates",
    AnalysisTemplate,
    ("id", "organization_id", "name", "plan", "created_at", "updated_at"),
    datetimes=frozenset({"created_at", "updated_at"}),
    documents=frozenset({"plan"}),
)

PROVIDER_KEYS = Table(
    "provider_keys",
    ProviderKey,
    ("id", "organization_id", "name", "provider", "sealed", "last4", "created_at", "updated_at"),
    datetimes=frozenset({"created_at", "updated_at"}),
)

CALLS = Table(
    "calls",
    Call,
    (
        "id",
        "organization_id",
        "direction",
        "status",
        "caller_phone",
        "assistant_phone",
        "number_id",
        "assistant_id",
        "agent_name",
        "business_name",
        "assistant_config",
        "first_message",
        "context",
        "error",
        "end_reason",
        "pbx_call_ref",
        "started_at",
        "ended_at",
        "duration_seconds",
        "summary",
        "analysis_result",
        "latency",
        "timings",
        "transferred_to",
        "transferred_at",
        "owner_node",
        "pbx",
        "campaign_id",
        "trunk",
        "api_key_id",
        "recording_path",
        "recording_duration_seconds",
        "answering_machine",
        "metadata",
        "scheduled_at",
        "latest_at",
        "ring_timeout_seconds",
        "speech_usage",
        "created_at",
        "updated_at",
        "seq",
    ),
    datetimes=frozenset(
        {
            "started_at",
            "ended_at",
            "transferred_at",
            "created_at",
            "updated_at",
            "scheduled_at",
            "latest_at",
        }
    ),
    documents=frozenset(
        {
            "assistant_config",
            "analysis_result",
            "latency",
            "timings",
            "answering_machine",
            "metadata",
            "speech_usage",
        }
    ),
    enums={"direction": Direction, "status": CallStatus},
    generated=frozenset({"seq"}),
)

# What update_call may change: everything but identity, tenant, direction, creation and the
# owner (which only a node's claim changes: a stale copy must not hand a call back).
CALL_MUTABLE_COLUMNS: tuple[str, ...] = tuple(
    c
    for c in CALLS.columns
    if c
    not in {
        "id",
        "organization_id",
        "direction",
        "created_at",
        "seq",
        "owner_node",
        "api_key_id",
        "metadata",
    }
)

CALL_MESSAGES = Table(
    "call_messages",
    CallMessage,
    ("call_id", "role", "content", "started_at", "ended_at", "interrupted", "seq"),
    datetimes=frozenset({"started_at", "ended_at"}),
    booleans=frozenset({"interrupted"}),
    generated=frozenset({"seq"}),
)

CALL_EVENTS = Table(
    "call_events",
    CallEvent,
    ("call_id", "type", "data", "created_at", "seq"),
    datetimes=frozenset({"created_at"}),
    documents=frozenset({"data"}),
    generated=frozenset({"seq"}),
)

NODES = Table(
    "nodes",
    NodeLease,
    ("id", "host", "pid", "pid_space", "run", "started_at", "lease_until"),
    datetimes=frozenset({"started_at", "lease_until"}),
)

EVENT_STREAMS = Table(
    "event_streams",
    EventStream,
    ("id", "node_id", "node_run", "organization_id", "api_key_id", "opened_at"),
    datetimes=frozenset({"opened_at"}),
)

IDEMPOTENCY = Table(
    "idempotency",
    IdempotencyRecord,
    ("organization_id", "key", "request_hash", "response_status", "response_body", "created_at"),
    datetimes=frozenset({"created_at"}),
    documents=frozenset({"response_body"}),
)

# Calls at the PBX (or on their way to it): a scheduled call is not one yet.
ACTIVE_STATUSES: tuple[str, ...] = tuple(str(s) for s in CallStatus if s.active)
TERMINAL_STATUSES: tuple[str, ...] = tuple(str(s) for s in CallStatus if s.terminal)
# The same for ``status IN ...`` in a statement (constant text: the statuses are ours).
ACTIVE_IN = "(" + ", ".join(f"'{s}'" for s in ACTIVE_STATUSES) + ")"
TERMINAL_IN = "(" + ", ".join(f"'{s}'" for s in TERMINAL_STATUSES) + ")"
