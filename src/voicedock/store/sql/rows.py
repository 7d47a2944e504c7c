"""Mapping between the domain records and table rows, shared by both backends.

Each ``Table`` lists its columns in insert order and which of them need converting: datetimes
(dialect-specific), JSON documents (serialized text in both dialects: SQLite TEXT, and
asyncpg takes ``str`` for JSONB), booleans and enums. Rows arrive as plain dicts of
``SqlValue``; the readers below (``integer``, ``text``, ...) narrow a column of a row that no
``Table`` maps (a count, a join).
"""

# Statements are assembled only from constant table/column names; values are always bound.
# ruff: noqa: S608

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from types import UnionType
from typing import ClassVar, Generic, Protocol, TypeVar, Union, get_args, get_origin, get_type_hints

import msgspec

from voicedock.domain.audit import AuditEvent
from voicedock.domain.billing import RateCard
from voicedock.domain.domains import Branding, Domain
from voicedock.domain.json import JsonValue
from voicedock.domain.knowledge import KnowledgeBase, KnowledgeDocument
from voicedock.domain.record_versions import RecordVersion
from voicedock.domain.records import (
    AnalysisTemplate,
    ApiKey,
    Assistant,
    AssistantVersion,
    Call,
    CallerMemory,
    CallEvent,
    CallMessage,
    CallStatus,
    ConsoleSession,
    EventStream,
    IdempotencyRecord,
    NodeLease,
    Organization,
    PhoneNumber,
    ProviderKey,
    Squad,
    ToolTemplate,
    Trunk,
)
from voicedock.domain.rehearsal import Suite, SuiteRun
from voicedock.store.base import json_default
from voicedock.store.protocols.billing import SpendLimit
from voicedock.store.sql.conn import Row, SqlValue, marks


class Record(Protocol):
    """What a table's rows are: a dataclass, whose fields are the columns."""

    __dataclass_fields__: ClassVar[dict[str, Field[object]]]


T = TypeVar("T", bound=Record)


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the SQL backends at the value and statement level."""

    name: str
    encode_datetime: Callable[[datetime], SqlValue]
    decode_datetime: Callable[[SqlValue], datetime]
    lock_suffix: str  # appended to SELECTs that must lock their rows ("" where writes serialize)
    # The database's clock, for leases several hosts must agree on (None: this host's clock).
    clock_sql: str | None = None

    def dt(self, value: datetime | None) -> SqlValue:
        return None if value is None else self.encode_datetime(value)

    def from_dt(self, value: SqlValue) -> datetime | None:
        return None if value is None else self.decode_datetime(value)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to it."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _sqlite_encode_datetime(value: datetime) -> str:
    # Fixed width (always microseconds, always +00:00) so text order equals time order.
    return as_utc(value).isoformat(timespec="microseconds")


def _sqlite_decode_datetime(value: SqlValue) -> datetime:
    return as_utc(datetime.fromisoformat(str(value)))


def _pg_encode_datetime(value: datetime) -> SqlValue:
    return as_utc(value)


def _pg_decode_datetime(value: SqlValue) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a timestamptz, got {type(value).__name__}")
    return as_utc(value)


SQLITE = Dialect("sqlite", _sqlite_encode_datetime, _sqlite_decode_datetime, "")
POSTGRES = Dialect(
    "postgres",
    _pg_encode_datetime,
    _pg_decode_datetime,
    " FOR UPDATE",
    "SELECT clock_timestamp() AS now",
)


def dump_json(value: object) -> str | None:
    if value is None:
        return None
    return json.dumps(value, default=json_default, separators=(",", ":"))


def load_json(value: SqlValue) -> JsonValue:
    if value is None:
        return None
    if not isinstance(value, str | bytes):
        raise TypeError(f"expected a JSON document, got {type(value).__name__}")
    decoded: JsonValue = json.loads(value)
    return decoded


def integer(value: SqlValue) -> int:
    """A column holding a number (a count, a sum, an id) as an ``int``."""
    if isinstance(value, int | float | Decimal | str):
        return int(value)
    raise TypeError(f"expected a number, got {type(value).__name__}")


def number(value: SqlValue) -> float:
    """A column holding a number as a ``float``."""
    if isinstance(value, int | float | Decimal | str):
        return float(value)
    raise TypeError(f"expected a number, got {type(value).__name__}")


def text(value: SqlValue) -> str:
    """A column holding text (NOT NULL)."""
    if isinstance(value, str):
        return value
    raise TypeError(f"expected text, got {type(value).__name__}")


def optional_text(value: SqlValue) -> str | None:
    """A column holding text or NULL."""
    return None if value is None else text(value)


def _sql_value(value: object) -> SqlValue:
    if value is None or isinstance(value, str | int | float | Decimal | bytes | datetime):
        return value
    raise TypeError(f"not a SQL value: {type(value).__name__}")


def _non_null(annotation: object) -> object:
    """``X`` of ``X | None``; any other annotation as it is."""
    if get_origin(annotation) in (Union, UnionType):
        kinds = [a for a in get_args(annotation) if a is not type(None)]
        if len(kinds) == 1:
            return kinds[0]
    return annotation


_SCALARS = (str, int, float, Decimal, bytes)


def _typed_document(kind: object) -> bool:
    """A column kept as JSON and read back as its type: a msgspec Struct, or a list of them."""
    if get_origin(kind) is list:
        (kind,) = get_args(kind)
    return isinstance(kind, type) and issubclass(kind, msgspec.Struct)


@dataclass(frozen=True, slots=True)
class Table(Generic[T]):
    """A table and the record its rows are: a column for each of the record's fields, of the
    same name (in the record's order), stored as its type says: a ``datetime`` in the dialect's
    form, a ``bool`` as a boolean, an enum by its value, a text or number as it is, anything
    else (a mapping, a list, a msgspec Struct: its fields) as a JSON document."""

    name: str
    model: type[T]
    generated: frozenset[str] = frozenset()  # assigned by the database, never inserted
    columns: tuple[str, ...] = field(init=False)
    datetimes: frozenset[str] = field(init=False)
    documents: frozenset[str] = field(init=False)  # JSON
    booleans: frozenset[str] = field(init=False)
    enums: Mapping[str, Callable[[str], object]] = field(init=False)
    structs: Mapping[str, object] = field(init=False)  # JSON, typed: a Struct or a list of them

    def __post_init__(self) -> None:
        hints = get_type_hints(self.model)
        kinds = {f.name: _non_null(hints[f.name]) for f in fields(self.model)}
        enums = {c: k for c, k in kinds.items() if isinstance(k, type) and issubclass(k, enum.Enum)}
        datetimes = frozenset(c for c, k in kinds.items() if k is datetime)
        booleans = frozenset(c for c, k in kinds.items() if k is bool)
        plain = {c for c, k in kinds.items() if k in _SCALARS}
        documents = frozenset(kinds.keys() - enums.keys() - datetimes - booleans - plain)
        object.__setattr__(self, "columns", tuple(kinds))
        object.__setattr__(self, "datetimes", datetimes)
        object.__setattr__(self, "documents", documents)
        object.__setattr__(self, "booleans", booleans)
        object.__setattr__(self, "enums", enums)
        structs = {c: k for c, k in kinds.items() if _typed_document(k)}
        object.__setattr__(self, "structs", structs)

    @property
    def insert_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.generated)

    def insert_sql(self, returning: str | None = None) -> str:
        cols = self.insert_columns
        sql = f"INSERT INTO {self.name} ({', '.join(cols)}) VALUES ({marks(cols)})"
        return f"{sql} RETURNING {returning}" if returning else sql

    def encode_value(self, column: str, value: object, dialect: Dialect) -> SqlValue:
        if column in self.documents:
            return dump_json(msgspec.to_builtins(value) if column in self.structs else value)
        if column in self.booleans:
            return bool(value)
        if column in self.enums:
            return str(value)
        if column in self.datetimes and value is not None:
            if not isinstance(value, datetime):
                raise TypeError(f"{self.name}.{column}: expected a datetime")
            return dialect.encode_datetime(value)
        return _sql_value(value)

    def encode(self, record: T, dialect: Dialect, columns: tuple[str, ...]) -> list[SqlValue]:
        return [self.encode_value(c, getattr(record, c), dialect) for c in columns]

    def decode(self, row: Row, dialect: Dialect) -> T:
        values: dict[str, object] = {}
        for column in self.columns:
            value = row[column]
            if column in self.datetimes:
                values[column] = dialect.from_dt(value)
            elif column in self.structs:
                document = load_json(value)  # NULL: a struct the record may leave out
                values[column] = (
                    None if document is None else msgspec.convert(document, self.structs[column])
                )
            elif column in self.documents:
                values[column] = load_json(value)
            elif column in self.booleans:
                values[column] = bool(value)
            elif column in self.enums:
                values[column] = self.enums[column](text(value))
            else:
                values[column] = value
        return self.model(**values)


ORGANIZATIONS = Table("organizations", Organization)

API_KEYS = Table("api_keys", ApiKey)

CONSOLE_SESSIONS = Table("console_sessions", ConsoleSession)

TRUNKS = Table("trunks", Trunk)

PHONE_NUMBERS = Table("phone_numbers", PhoneNumber)

ASSISTANTS = Table("assistants", Assistant)

ASSISTANT_VERSIONS = Table("assistant_versions", AssistantVersion)

TOOL_TEMPLATES = Table("tool_templates", ToolTemplate)

# Versions of squads and tool templates, one table for both kinds.
RECORD_VERSIONS = Table("record_versions", RecordVersion)

KNOWLEDGE_BASES = Table("knowledge_bases", KnowledgeBase)

KNOWLEDGE_DOCUMENTS = Table("knowledge_documents", KnowledgeDocument)

ANALYSIS_TEMPLATES = Table("analysis_templates", AnalysisTemplate)

PROVIDER_KEYS = Table("provider_keys", ProviderKey)

SUITES = Table("test_suites", Suite)

SUITE_RUNS = Table("test_runs", SuiteRun)

SQUADS = Table("squads", Squad)

RATE_CARDS = Table("rate_cards", RateCard)

SPEND_LIMITS = Table("spend_limits", SpendLimit)

DOMAINS = Table("organization_domains", Domain)

BRANDING = Table("organization_branding", Branding)

AUDIT_EVENTS = Table("audit_events", AuditEvent, generated=frozenset({"seq"}))

CALLS = Table("calls", Call, generated=frozenset({"seq"}))

# What update_call may change: everything but identity, tenant, direction, creation and the
# owner (which only a node's claim changes: a stale copy must not hand a call back); its
# updated_at is stamped (TransactionPart._touched).
CALL_MUTABLE_COLUMNS: tuple[str, ...] = tuple(
    c
    for c in CALLS.columns
    if c
    not in {
        "id",
        "organization_id",
        "direction",
        "created_at",
        "updated_at",
        "seq",
        "owner_node",
        "api_key_id",
        "metadata",
    }
)

CALL_MESSAGES = Table("call_messages", CallMessage, generated=frozenset({"seq"}))

CALLER_MEMORIES = Table("caller_memories", CallerMemory)

CALL_EVENTS = Table("call_events", CallEvent, generated=frozenset({"seq"}))

NODES = Table("nodes", NodeLease)

EVENT_STREAMS = Table("event_streams", EventStream)

IDEMPOTENCY = Table("idempotency", IdempotencyRecord)

# Calls at the PBX (or on their way to it): a scheduled call is not one yet.
ACTIVE_STATUSES: tuple[str, ...] = tuple(str(s) for s in CallStatus if s.active)
TERMINAL_STATUSES: tuple[str, ...] = tuple(str(s) for s in CallStatus if s.terminal)
# The same for ``status IN ...`` in a statement (constant text: the statuses are ours).
ACTIVE_IN = "(" + ", ".join(f"'{s}'" for s in ACTIVE_STATUSES) + ")"
TERMINAL_IN = "(" + ", ".join(f"'{s}'" for s in TERMINAL_STATUSES) + ")"
